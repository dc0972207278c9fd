#!/usr/bin/env bash
# Shows that an app can depend on MFRec the way Swift packages are used: clones this repo's HEAD into a
# temp folder, tags it 0.2.0, and builds and runs a throwaway package outside the repo that names it by
# `.package(url: "file://…", from: "0.2.0")`. SwiftPM refuses unsafeFlags in such a dependency, so this
# fails if one comes back.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

git clone -q "$repo" "$work/mfrec"
git -C "$work/mfrec" -c user.name=ci -c user.email=ci@localhost tag -a 0.2.0 -m "0.2.0 (throwaway tag)"

mkdir -p "$work/app/Sources/app"
cat > "$work/app/Package.swift" <<SWIFT
// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "app",
    platforms: [.macOS(.v15)],
    dependencies: [.package(url: "file://$work/mfrec", from: "0.2.0")],
    targets: [.executableTarget(name: "app", dependencies: [.product(name: "MFRec", package: "mfrec")])]
)
SWIFT
cat > "$work/app/Sources/app/main.swift" <<'SWIFT'
import MFRec

let folder = CommandLine.arguments[1]
_ = try SyntheticRatings(users: 200, items: 300, ratings: 6_000).write(to: folder + "/ratings.csv")
let rec = try Recommender(path: folder + "/app.db")
try rec.ingest(path: folder + "/ratings.csv")
var request = TrainRequest(); request.tune = false; request.options.epochs = 5
_ = try rec.train(request)
print(try rec.queries().recommend(user: "1", n: 3).items.map(\.item))
SWIFT

cd "$work/app"
swift build -q 2>&1 | grep -v '^warning: ' || true
swift build -q >/dev/null
out="$(swift run -q app "$work")"
echo "app printed: $out"
[[ "$out" == \[*\] ]] || { echo "use-as-dependency.sh: unexpected output" >&2; exit 1; }
