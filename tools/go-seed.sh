#!/bin/sh
# Seeds math/rand in the Go original's test binaries, as upstream's Go does.
#
# Usage: tools/go-seed.sh DST
#   DST: the tree that ../shared/tools/go-baseline.sh built (its DST).
#
# Upstream needs Go 1.22, where math/rand's global source is seeded at
# random when a program starts (since Go 1.20). This machine's Go is 1.19,
# which seeds it with 1: every run of a baseline binary draws the same
# election timeouts and the same RAFT_UNRELIABLE_RPC dice, in an order that
# only the scheduler varies (part 1's TestElectionBasic starts its timers at
# 281, 237 and 197 ms in every run). This adds an init that seeds it from
# the clock to each package and rebuilds go-part1.test, go-part2.test and
# go-part3-raft.test in DST with -race, as go-baseline.sh builds them.
set -eu
[ $# -eq 1 ] || { sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//;/^set -eu/d' >&2; exit 2; }
dst=$(cd "$1" && pwd)
cd "$dst"
for p in part1 part2 part3/raft; do
	[ -f "$p/raft.go" ] || { echo "go-seed: $dst/$p/raft.go: not found" >&2; exit 1; }
	cat > "$p/zz_seed_test.go" <<'EOF'
package raft

import (
	"math/rand"
	"time"
)

// Go 1.20 and later seed math/rand at random; Go 1.19 seeds it with 1.
func init() { rand.Seed(time.Now().UnixNano()) }
EOF
done
export GOPATH="$PWD/.gopath" GOPROXY=off GOFLAGS=-mod=vendor
for p in part1 part2 part3/raft; do
	(cd "$p" && go test -race -c -o "$dst/go-$(echo "$p" | tr / -).test" .)
done
ls -la "$dst"/go-*.test
