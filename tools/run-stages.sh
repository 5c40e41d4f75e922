#!/usr/bin/env bash
# Run `make STAGE` for each stage, all of them even when one fails, then print a summary
# with the time each took. Exits non-zero when any stage failed. The closing line,
# "stages: N passed, N failed", is the one CI reads.
set -uo pipefail

names=()
results=()
times=()
failed=0
for stage in "$@"; do
  printf '\n==> make %s\n' "$stage"
  start=$(date +%s)
  if make --no-print-directory "$stage"; then
    results+=("ok")
  else
    results+=("FAILED")
    failed=$((failed + 1))
  fi
  names+=("$stage")
  times+=("$(( $(date +%s) - start ))")
done

printf '\n%-16s %-8s %s\n' "stage" "result" "seconds"
for i in "${!names[@]}"; do
  printf '%-16s %-8s %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
done
echo "stages: $(( ${#names[@]} - failed )) passed, $failed failed"
[ "$failed" -eq 0 ]
