#!/usr/bin/env bash
# Installed size and wall time of README command 1 in fresh virtual environments.
#   scripts/bench_install.sh [REF ...]    (default: the working tree)
# For each REF (a git commit, or "." for the working tree) it clones the repository at REF into
# a temporary folder, creates a new venv, and times README command 1 there (pip's cache is
# whatever the machine has: run it twice for a warm cache). Then it reports the venv's size
# and the same for a venv with the `train` extra. Prints a Markdown table.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cmd1=$(grep -m1 '^pip install \. && gancomp compress' "$repo/README.md" || true)
refs=("${@:-.}")
echo "| ref | extra | venv size | README command 1 wall time |"
echo "|---|---|---|---|"
for ref in "${refs[@]}"; do
  for extra in "" "[train]"; do
    work=$(mktemp -d)
    if [ "$ref" = "." ]; then
      mkdir -p "$work/src"  # the working tree's tracked files, as they are now
      git -C "$repo" ls-files -z | tar -C "$repo" --null -T - -cf - | tar -C "$work/src" -xf -
    else
      git -C "$repo" worktree add -q --detach "$work/src" "$ref"
    fi
    python3 -m venv "$work/venv"
    # shellcheck disable=SC1091
    . "$work/venv/bin/activate"
    cd "$work/src"
    if [ -z "$extra" ]; then
      c=${cmd1:-"pip install . && gancomp compress examples/airplane.png --category airplane -o airplane.gcz --force"}
      start=$(date +%s.%N)
      eval "$c" > /dev/null 2>&1
      t=$(echo "$(date +%s.%N) - $start" | bc)
    else
      start=$(date +%s.%N)
      pip install -q ".$extra" > /dev/null 2>&1
      t=$(echo "$(date +%s.%N) - $start" | bc)
    fi
    has_tf=$(python -c 'import importlib.util as u; print("with TF" if u.find_spec("tensorflow") else "no TF")')
    size=$(du -sm "$work/venv" | cut -f1)
    deactivate
    cd "$repo"
    printf '| %s | %s | %s MB (%s) | %.1f s%s |\n' "$ref" "${extra:-runtime}" "$size" "$has_tf" "$t" \
      "$([ -n "$extra" ] && echo ' (pip install of the extra)' || true)"
    [ "$ref" = "." ] || git -C "$repo" worktree remove --force "$work/src"
    rm -rf "$work"
  done
done
