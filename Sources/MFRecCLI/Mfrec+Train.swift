import ArgumentParser
import Foundation
import MFRec

extension Mfrec {
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a matrix-factorization model on the stored ratings and save it as the live snapshot.",
            discussion: """
                Holds out a random --test-fraction of the ratings (or uses --test-file), prints train and test \
                error per epoch, then saves the model as a new snapshot and makes it live. Nothing is saved \
                if training fails or is interrupted.
                """)

        @OptionGroup var database: DatabaseOptions

        @Option(
            help: ArgumentHelp(
                "Latent factors k; a list like 3,5,10,20 trains each and keeps the best by test RMSE.",
                valueName: "k[,k…]"))
        var factors: String = String(TrainingOptions().factors)
        @Option(
            help:
                "Passes over the training ratings (1…100000; default: chosen on validation, at most 60; 60 with --tune off)."
        )
        var epochs: Int?
        @Option(
            help:
                "SGD step size (0.000001…1; default: chosen on validation among 0.01, 0.02, 0.04; 0.02 with --tune off)."
        )
        var learningRate: Float?
        @Option(help: "Multiply the learning rate by this after every epoch (0.01…1).")
        var learningRateDecay = TrainingOptions().learningRateDecay
        @Option(
            help: ArgumentHelp(
                "L2 regularization of the embeddings (0…100; default: chosen on validation among 0.05, 0.1, 0.2; 0.1 with "
                    + "--tune off).")
        )
        var regularization: Float?
        @Option(help: "L2 regularization of the biases (0…100).")
        var biasRegularization = TrainingOptions().biasRegularization
        @Option(help: "Standard deviation of the initial embeddings (0…1).")
        var initScale = TrainingOptions().initScale
        @Option(help: "Share of the ratings held out as the test set (0…0.99; 0 trains on all).")
        var testFraction = 0.2
        @Option(help: "Evaluate on this ratings file instead of a random split (train on all stored ratings).")
        var testFile: String?
        @Option(help: "Random seed (split, initialization, shuffling) (0…18446744073709551615).")
        var seed: UInt64 = 42
        @Option(help: "Training threads (1…256; default: all cores).")
        var threads = TrainingOptions().threads
        @Option(help: "Blocks per side of the rating grid (1…256; the model depends on it, not on --threads).")
        var bins = TrainingOptions().bins
        @Flag(help: "Train the plain dot-product model r̂ = p·q (no global mean or biases).")
        var noBias = false
        @Flag(help: "Keep every embedding value ≥ 0.")
        var nonnegative = false
        @Option(
            help: ArgumentHelp(
                "Factors of the item co-occurrence embedding that ranks items for users with few ratings (0…1024; 0: none; "
                    + "those users get the rating model, or the popular list without a vector).")
        )
        var cooccurrenceFactors = TrainRequest().cooccurrenceFactors
        @Option(
            help: ArgumentHelp(
                "on: choose the ranking model's settings and the light-user rule on a validation carve-out of the "
                    + "training ratings; off: fixed settings (k 64, α 0.3, β 0.5, rating weights).")
        )
        var tune: Switch = .on
        @Option(
            help: ArgumentHelp(
                "on: fit the ranking model that answers `recommend` by default; off: none (recommend then ranks by "
                    + "the rating model).")
        )
        var ranking: Switch = .on
        @Option(help: "Fix k of the ranking model (1…1024); tuning chooses the rest.")
        var rankingFactors: Int?
        @Option(
            help: ArgumentHelp(
                "Fix the weight of the ranking model's blend with the rating model's predicted ratings (0…10; 0: "
                    + "none); tuning chooses it otherwise, --tune off uses none."))
        var ratingBlend: Float?
        @Option(help: "Seconds after which tuning starts no new candidate family (1…86400).")
        var tuneSeconds = TrainRequest().tuneSeconds
        @Option(
            help: ArgumentHelp(
                "Tune by K-fold cross-validation of the training ratings instead of one 20% carve-out (1…20; 1: the "
                    + "carve-out; about K times the tuning time)."))
        var folds = TrainRequest().folds
        @Option(
            help: ArgumentHelp(
                "How the item matrix file keeps the rows top-n scans read: f32 (the rows), f16 or i8 (a copy in half "
                    + "the bytes or a quarter; each scan re-scores its candidates from the f32 rows).")
        )
        var itemPrecision: ItemPrecision = .f32
        @Option(help: "Write the per-epoch history as CSV to this file (- for standard output).")
        var history: String?
        @Option(help: "Draw train and test loss per epoch as an SVG chart to this file (- for standard output).")
        var plot: String?
        @Option(help: "A note to store with the snapshot.")
        var note: String?
        @Flag(help: "Print only the summary.")
        var quiet = false

        var factorList: [Int]? {
            let parts = factors.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) >= 1 }) else { return nil }
            return parts.map { $0! }
        }

        func validate() throws {
            guard let list = factorList, list.allSatisfy({ $0 <= 1024 }) else {
                throw ValidationError("--factors must be a number from 1 to 1024, or a comma-separated list of them")
            }
            _ = list
            try require(epochs, in: 1...100_000, "--epochs")
            try require(learningRate, in: 0.000_001...1, "--learning-rate")
            try require(learningRateDecay, in: 0.01...1, "--learning-rate-decay")
            try require(regularization, in: 0...100, "--regularization")
            try require(biasRegularization, in: 0...100, "--bias-regularization")
            try require(initScale, in: 0...1, "--init-scale")
            try require(testFraction, in: 0...0.99, "--test-fraction")
            try require(threads, in: 1...256, "--threads")
            try require(bins, in: 1...256, "--bins")
            try require(cooccurrenceFactors, in: 0...1024, "--cooccurrence-factors")
            try require(rankingFactors, in: 1...1024, "--ranking-factors")
            try require(ratingBlend, in: 0...10, "--rating-blend")
            try require(tuneSeconds, in: 1...86_400, "--tune-seconds")
            try require(folds, in: 1...20, "--folds")
        }

        func run() throws {
            if history == "-" || plot == "-" { OutputFile.reserveStandardOutput() }
            let rec = try database.write()
            var request = TrainRequest()
            request.options.factors = factorList![0]
            if let epochs { request.options.epochs = epochs }
            if let learningRate { request.options.learningRate = learningRate }
            request.options.learningRateDecay = learningRateDecay
            if let regularization { request.options.regularization = regularization }
            request.fixedEpochs = epochs != nil
            request.fixedLearningRate = learningRate != nil
            request.fixedRegularization = regularization != nil
            request.options.biasRegularization = biasRegularization
            request.options.initScale = initScale
            request.options.seed = seed
            request.options.threads = threads
            request.options.bins = bins
            request.options.useBias = !noBias
            request.options.nonnegative = nonnegative
            request.options.itemPrecision = itemPrecision == .f32 ? nil : itemPrecision
            request.factorList = factorList!.count > 1 ? factorList : nil
            request.testFraction = testFraction
            request.testFile = testFile
            request.note = note
            request.cooccurrenceFactors = cooccurrenceFactors
            request.tune = tune == .on
            request.rankingModel = ranking == .on
            request.rankingFactors = rankingFactors
            request.rankingRatingWeight = ratingBlend
            request.tuneSeconds = tuneSeconds
            request.folds = folds

            let columns = [
                "epoch", "train loss", "train MAE", "train MSE", "test MAE", "test MSE", "test RMSE", "seconds",
            ]
            let widths = [5, 10, 9, 9, 8, 8, 9, 7]
            func row(_ cells: [String]) -> String {
                zip(cells, widths).map { String(repeating: " ", count: max(0, $1 - $0.count)) + $0 }.joined(
                    separator: "  ")
            }
            var lastRun = -1
            // Within-epoch progress on large data, when stderr is a terminal: one tick per stratum.
            let runs = factorList!.count
            let ticksTotal = Int64(bins * request.options.epochs * runs)
            let bar = (try rec.ratingCount()) > 1_000_000 ? Console.progressBar("train", unit: .count) : nil
            var ticks: Int64 = 0
            let outcome = try rec.train(
                request,
                progress: { run, k, stats in
                    guard !quiet else { return }
                    // Clear the progress bar before a row.
                    if bar != nil { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                    if run != lastRun {
                        lastRun = run
                        print(
                            "\nk = \(k)"
                                + (request.factorList == nil ? "" : " (\(run + 1) of \(request.factorList!.count))"))
                        print(row(columns))
                    }
                    func f(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "-" }
                    print(
                        row([
                            "\(stats.epoch)", f(stats.trainLoss), f(stats.trainMAE), f(stats.trainMSE),
                            f(stats.test?.mae),
                            f(stats.test?.mse), f(stats.test?.rmse), String(format: "%.2f", stats.seconds),
                        ]))
                    fflush(nil)
                },
                isCancelled: {
                    ticks += 1
                    if let bar, ticks % 4 == 0 || ticks == ticksTotal { bar(ticks, ticksTotal) }
                    return false
                },
                rankingProgress: { line in
                    if !quiet {
                        print("ranking model, validation: " + line)
                        fflush(nil)
                    }
                },
                ratingProgress: { line in
                    if !quiet {
                        print("rating model, validation: " + line)
                        fflush(nil)
                    }
                })

            if outcome.runs.count > 1 {
                print("\nresults from different settings:")
                let rows = outcome.runs.enumerated().map { index, run in
                    [
                        String(run.factors), run.test.map { String(format: "%.4f", $0.mae) } ?? "-",
                        run.test.map { String(format: "%.4f", $0.mse) } ?? "-",
                        run.test.map { String(format: "%.4f", $0.rmse) } ?? "-",
                        String(format: "%.2f", run.seconds), index == outcome.best ? "✓" : "",
                    ]
                }
                print(
                    table(
                        ["k", "test MAE", "test MSE", "test RMSE", "seconds", "kept"], rows,
                        rightAligned: [0, 1, 2, 3, 4]))
            }
            let kept = outcome.runs[outcome.best]
            print("")
            print(
                "trained on \(plural(outcome.trainRatings, "rating")), tested on \(grouped(outcome.testRatings))"
                    + (outcome.unseenTestPairs > 0
                        ? " (\(grouped(outcome.unseenTestPairs)) test pairs with a user or item unseen in "
                            + "training, predicted by the fallback μ + known bias)"
                        : ""))
            if let test = kept.test {
                print(
                    String(format: "test RMSE %.4f, MAE %.4f, MSE %.4f", test.rmse, test.mae, test.mse)
                        + " (k = \(kept.factors), \(kept.history.count) epochs, \(duration(kept.seconds)))")
            }
            print(
                "times: loading the ratings \(duration(outcome.loadSeconds))"
                    + (outcome.loadedFromCache ? " (from the training cache)" : "") + ", "
                    + (outcome.rating.map { "tuning the rating model \(duration($0.seconds)), " } ?? "")
                    + "training \(duration(outcome.runs.reduce(0) { $0 + $1.seconds })), "
                    + "co-occurrence embedding \(duration(outcome.cooccurrenceSeconds)), ranking model "
                    + "\(duration(outcome.rankingSeconds)), "
                    + (outcome.cacheSeconds > 0
                        ? "writing the training cache \(duration(outcome.cacheSeconds)), " : "")
                    + "saving the snapshot \(duration(outcome.saveSeconds))")
            if let choice = outcome.rating {
                print(
                    "rating model: learning rate \(choice.learningRate), regularization \(choice.regularization), "
                        + "\(choice.epochs) epochs "
                        + "(chosen on validation: RMSE \(String(format: "%.4f", choice.validationRMSE)), "
                        + "\(choice.grid.count) settings); "
                        + "update step \(choice.updateLearningRate), fold-in prior \(choice.foldInPrior) (probe "
                        + "RMSE \(String(format: "%.4f", choice.probeRMSEWithUpdates)) with updates, "
                        + "\(String(format: "%.4f", choice.probeRMSEWithoutUpdates)) without)")
            }
            if let choice = outcome.ranking { print(describe(choice)) }
            if folds > 1 && tune == .on {
                print(
                    "tuned by \(folds)-fold cross-validation of the training ratings: validation figures are means over "
                        + "the folds, and so are the update step's probe figures and the light-user rule's (except a newcomer "
                        + "simulation by time, which is one)")
            }
            if let saved = outcome.savedUpdatesAs {
                print("saved the previous live model's incremental updates as snapshot \(saved)")
            }
            print("saved snapshot \(outcome.snapshotID) (live)")
            if let history {
                try writeHistoryCSV(kept.history, to: history)
                print("wrote history to \(history)")
            }
            if let plot {
                try LossChart(history: kept.history, title: "mfrec training, k = \(kept.factors)").write(to: plot)
                print("wrote loss chart to \(plot)")
            }
        }
    }
}

enum Switch: String, ExpressibleByArgument, CaseIterable { case on, off }

/// What validation chose for the ranking model, in one or two lines.
func describe(_ choice: RankingChoice) -> String {
    var text =
        "ranking model: \(choice.parameters)"
        + (choice.popularityWeight > 0 ? ", blended with popularity (weight \(choice.popularityWeight))" : "")
        + (choice.ratingBlend > 0 ? ", blended with the rating model's predictions (weight \(choice.ratingBlend))" : "")
        + (choice.tuned ? " (chosen on validation, \(choice.grid.count) settings scored)" : " (fixed: --tune off)")
    if let v = choice.validation {
        text += String(
            format: "\n  validation NDCG@10 %.4f, P@10 %.4f (%d users); popular %.4f, co-occurrence %.4f", v.ndcg,
            v.precision, v.users,
            v.popularNDCG, v.cooccurrenceNDCG)
    }
    text +=
        choice.lightBelow > 0
        ? "\n  users with fewer than \(choice.lightBelow) ratings are ranked by \(choice.lightRanker.rawValue)"
            + (choice.lightPopularityWeight > 0
                ? " blended with popularity (weight \(choice.lightPopularityWeight))" : "")
            + (choice.lightDecay < 1
                ? ", their newer ratings weighted more (each rating \(choice.lightDecay) times the next newer one's)"
                : "")
        : "\n  every user with ratings is ranked by it"
    return text
}

func writeHistoryCSV(_ history: [EpochStats], to path: String) throws {
    var text = "epoch,train_loss,train_mae,train_mse,test_mae,test_mse,test_rmse,seconds,learning_rate\n"
    for s in history {
        let cells: [String] = [
            String(s.epoch), "\(s.trainLoss)", "\(s.trainMAE)", "\(s.trainMSE)",
            s.test.map { "\($0.mae)" } ?? "", s.test.map { "\($0.mse)" } ?? "",
            s.test.map { "\($0.rmse)" } ?? "", "\(s.seconds)", "\(s.learningRate)",
        ]
        text += cells.joined(separator: ",") + "\n"
    }
    try atomicWrite(Data(text.utf8), to: path)
}

/// Writes a file as `OutputFile` does: `-` is stdout, links are followed, a regular file is replaced whole.
func atomicWrite(_ data: Data, to path: String) throws {
    try OutputFile.write(data, to: path)
}

extension ItemPrecision: ExpressibleByArgument {}
