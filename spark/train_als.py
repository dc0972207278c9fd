"""Train a matrix-factorization model with Spark MLlib ALS for mfrec to import and serve.

    spark-submit --master local[2] spark/train_als.py --ratings ratings.csv.gz --output model/ \
        --model rating --rank 32 --max-iter 10 --reg-param 0.05

Reads ratings from any path Spark can read (local, HDFS, S3; CSV with a header, JSON Lines, or Parquet),
maps arbitrary string user and item ids to the integers ALS needs (a distributed zipWithIndex: no id
list is collected to the driver), trains `pyspark.ml.recommendation.ALS` -- explicit ratings for a
rating model, `implicitPrefs=True` for a ranking model -- evaluates it on a holdout, and writes, with
Spark's own writers (part files, so it scales):

    OUTPUT/user_factors/part-*.json   {"id": "<original user id>", "features": [k floats]}
    OUTPUT/item_factors/part-*.json   {"id": "<original item id>", "features": [k floats]}
    OUTPUT/manifest/part-00000        one JSON object: rank, parameters, metrics, Spark version, row counts
    OUTPUT/check/...                  only with --check-users/--check-pairs: Spark's own predictions and
                                      top-10 lists for a sample, to verify an import against

Then: `mfrec import spark OUTPUT --as rating` (or `--as ranking` for an implicit model).
"""

import argparse
import json
import sys

from pyspark.sql import SparkSession, functions as F
from pyspark.ml.recommendation import ALS
from pyspark.ml.evaluation import RegressionEvaluator, RankingEvaluator

MANIFEST_FORMAT = "mfrec-spark-als/1"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ratings", required=True, help="ratings: a CSV (header), JSON Lines or Parquet path")
    p.add_argument("--format", choices=["csv", "json", "parquet"], help="input format (default: from the path)")
    p.add_argument("--output", required=True, help="folder to write the factors and manifest into (replaced)")
    p.add_argument("--model", choices=["rating", "implicit"], default="rating",
                   help="rating: explicit ALS (mfrec import --as rating); implicit: implicitPrefs=True (--as ranking)")
    p.add_argument("--user-col", default="user")
    p.add_argument("--item-col", default="item")
    p.add_argument("--rating-col", default="rating")
    p.add_argument("--rank", type=int, default=10)
    p.add_argument("--max-iter", type=int, default=10)
    p.add_argument("--reg-param", type=float, default=0.1)
    p.add_argument("--alpha", type=float, default=1.0, help="confidence scale of implicit ALS")
    p.add_argument("--nonnegative", action="store_true")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--holdout", type=float, default=0.1,
                   help="share of ratings held out to evaluate (0: train on all, no metrics)")
    p.add_argument("--relevant-at", type=float, default=4.0,
                   help="implicit model: holdout ratings at or above this are the relevant items of the ranking metrics")
    p.add_argument("--check-users", type=int, default=0, help="write Spark's top-10 for this many sampled users")
    p.add_argument("--check-pairs", type=int, default=0, help="write Spark's prediction for this many sampled ratings")
    p.add_argument("--compression", choices=["none", "gzip"], default="none", help="of the factor part files")
    args = p.parse_args(argv)
    if args.rank < 1 or args.max_iter < 1 or args.reg_param < 0 or args.alpha < 0 or not 0 <= args.holdout < 1:
        p.error("need rank >= 1, max-iter >= 1, reg-param >= 0, alpha >= 0, 0 <= holdout < 1")
    return args


def read_ratings(spark, args):
    fmt = args.format
    path = args.ratings.rstrip("/")
    if fmt is None:
        stem = path[:-3] if path.endswith(".gz") else path
        fmt = "csv" if stem.endswith(".csv") else "json" if stem.endswith((".json", ".jsonl")) else "parquet"
    if fmt == "csv":
        # RFC 4180 quoting, as `mfrec export --ratings` writes it: "" inside a quoted field is one quote.
        df = spark.read.option("header", True).option("escape", "\"").csv(args.ratings)
    elif fmt == "json":
        df = spark.read.json(args.ratings)
    else:
        df = spark.read.parquet(args.ratings)
    for col in (args.user_col, args.item_col, args.rating_col):
        if col not in df.columns:
            sys.exit(f"train_als.py: {args.ratings} has no column {col!r} (columns: {', '.join(df.columns)})")
    return df.select(
        F.col(args.user_col).cast("string").alias("key_user"),
        F.col(args.item_col).cast("string").alias("key_item"),
        F.col(args.rating_col).cast("float").alias("rating"),
    ).where(F.col("key_user").isNotNull() & F.col("key_item").isNotNull() & F.col("rating").isNotNull())


def index(df, column, name):
    """(key, integer id) for every distinct value of `column`, assigned without collecting to the driver."""
    keys = df.select(column).distinct().rdd.map(lambda row: row[0]).zipWithIndex()
    return keys.map(lambda pair: (pair[0], int(pair[1]))).toDF([column, name])


def main(argv):
    args = parse_args(argv)
    spark = SparkSession.builder.appName("mfrec-train-als").getOrCreate()
    ratings = read_ratings(spark, args)
    users = index(ratings, "key_user", "uid").cache()
    items = index(ratings, "key_item", "iid").cache()
    user_count, item_count = users.count(), items.count()
    if max(user_count, item_count) >= 2**31:
        sys.exit("train_als.py: more than 2^31 distinct users or items: ALS ids are 32-bit integers")
    data = ratings.join(users, "key_user").join(items, "key_item").select("uid", "iid", "rating", "key_user", "key_item")
    data = data.cache()
    if args.holdout > 0:
        train, holdout = data.randomSplit([1 - args.holdout, args.holdout], seed=args.seed)
    else:
        train, holdout = data, None

    implicit = args.model == "implicit"
    als = ALS(rank=args.rank, maxIter=args.max_iter, regParam=args.reg_param, alpha=args.alpha,
              implicitPrefs=implicit, nonnegative=args.nonnegative, seed=args.seed,
              userCol="uid", itemCol="iid", ratingCol="rating", coldStartStrategy="drop")
    model = als.fit(train)

    metrics = {}
    if holdout is not None:
        if implicit:
            relevant = holdout.where(F.col("rating") >= args.relevant_at).groupBy("uid").agg(
                F.collect_list(F.col("iid").cast("double")).alias("label"))
            top = model.recommendForUserSubset(relevant.select("uid"), 10).select(
                "uid", F.col("recommendations.iid").cast("array<double>").alias("prediction"))
            scored = top.join(relevant, "uid")
            for metric, name in (("precisionAtK", "precision@10"), ("ndcgAtK", "ndcg@10")):
                evaluator = RankingEvaluator(metricName=metric, k=10, labelCol="label", predictionCol="prediction")
                metrics[name] = evaluator.evaluate(scored)
            metrics["note"] = "top-10 over every item (rated ones included), relevant = holdout rating >= %g" % args.relevant_at
        else:
            predicted = model.transform(holdout)
            for metric in ("rmse", "mae"):
                metrics[metric] = RegressionEvaluator(metricName=metric, labelCol="rating",
                                                      predictionCol="prediction").evaluate(predicted)

    out = args.output.rstrip("/")
    options = {} if args.compression == "none" else {"compression": args.compression}
    for factors, keys, key, name in ((model.userFactors, users, "key_user", "uid"),
                                     (model.itemFactors, items, "key_item", "iid")):
        side = "user" if name == "uid" else "item"
        factors.join(keys, factors.id == keys[name]).select(F.col(key).alias("id"), "features") \
            .write.mode("overwrite").json(f"{out}/{side}_factors", **options)

    if args.check_users > 0:
        sample = users.orderBy(F.rand(args.seed)).limit(args.check_users)
        recs = model.recommendForUserSubset(sample.select("uid"), 10)
        exploded = recs.select("uid", F.posexplode("recommendations").alias("pos", "rec")) \
            .select("uid", "pos", F.col("rec.iid").alias("iid"), F.col("rec.rating").alias("score"))
        exploded.join(users, "uid").join(items, "iid") \
            .groupBy("key_user").agg(F.sort_array(F.collect_list(F.struct("pos", "key_item", "score"))).alias("top")) \
            .select(F.col("key_user").alias("user"), F.col("top.key_item").alias("items"),
                    F.col("top.score").alias("scores")) \
            .coalesce(1).write.mode("overwrite").json(f"{out}/check/recommendations")
    if args.check_pairs > 0:
        pairs = data.orderBy(F.rand(args.seed + 1)).limit(args.check_pairs)
        model.transform(pairs).select(F.col("key_user").alias("user"), F.col("key_item").alias("item"),
                                      "prediction") \
            .coalesce(1).write.mode("overwrite").json(f"{out}/check/predictions")

    manifest = {
        "format": MANIFEST_FORMAT,
        "model": args.model,
        "rank": args.rank,
        "parameters": {"maxIter": args.max_iter, "regParam": args.reg_param, "alpha": args.alpha,
                       "implicitPrefs": implicit, "nonnegative": args.nonnegative, "seed": args.seed,
                       "holdout": args.holdout},
        "metrics": metrics,
        "sparkVersion": spark.version,
        "rows": {"ratings": data.count(), "train": train.count(),
                 "holdout": holdout.count() if holdout is not None else 0,
                 "users": user_count, "items": item_count},
        "input": args.ratings,
    }
    write_text(spark, f"{out}/manifest", json.dumps(manifest, sort_keys=True))
    print(json.dumps(manifest, sort_keys=True))
    spark.stop()


def write_text(spark, path, text):
    """One small text file as a one-partition folder (`path/part-00000`), replacing it, on any file system."""
    jvm, jsc = spark.sparkContext._jvm, spark.sparkContext._jsc
    folder = jvm.org.apache.hadoop.fs.Path(path)
    folder.getFileSystem(jsc.hadoopConfiguration()).delete(folder, True)
    spark.sparkContext.parallelize([text], 1).saveAsTextFile(path)


if __name__ == "__main__":
    main(sys.argv[1:])
