#!/usr/bin/env bash
# check-doc-refs.sh - every citation of the repository's documents must resolve.
#
#   bash scripts/check-doc-refs.sh [REPO_DIR]      (default: the repository of this script)
#
# Checks, over every text file of the repository (code comments, --help strings,
# scripts, documents):
#   * "docs/X.md §N" (also lists and ranges: "§1.2-§1.7, §2.1", "§4.1/§4.3"):
#     docs/X.md exists and has a section N, i.e. a heading "N. ..." / "N ..." or,
#     for N = S.k, item "k." of the numbered list directly under heading S;
#   * a bare "§N" means docs/algorithm.md in code and in docs/sampler.md and
#     docs/flow.md, and the document itself in the other documents;
#   * 'docs/X.md, "Name"' / 'docs/X.md ("Name")': X has a heading (or a line)
#     starting with Name;
#   * every mentioned NAME.md without a directory, and every docs/X.md, is a file
#     of the repository; nothing points outside it to ../shared;
#   * in docs/*.md and README.md, every path under a top-level directory of the
#     repository (coordinator/sampler/sampler.c, examples/*.c, ...) and every
#     back-quoted file name (`integrator.c`, `flow_layers.[ch]`) exists.
# Prints one line per broken reference (file:line: reason) and exits 1 if
# there is any, 0 otherwise.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

list=$(mktemp)
trap 'rm -f "$list"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files --cached --others --exclude-standard >"$list"
else
  find . -path ./.git -prune -o -path './build*' -prune -o -type f -print | sed 's|^\./||' >"$list"
fi
# keep the files that exist in this checkout (a deleted but still indexed file is not there)
files=()
while IFS= read -r f; do
  [ -f "$f" ] && files+=("$f")
done <"$list"
printf '%s\n' "${files[@]}" >"$list"

docs=()
for f in "${files[@]}"; do
  case $f in docs/*.md | README.md) docs+=("$f") ;; esac
done

# text files only (grep -I: no binary files)
mapfile -t texts < <(printf '%s\n' "${files[@]}" | xargs -d '\n' grep -lI '' -- 2>/dev/null || true)

LC_ALL=C awk -v self="scripts/check-doc-refs.sh" '
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function bad(msg) { printf "%s:%d: %s\n", FILENAME, FNR, msg; nbad++ }
function lower(s) { return tolower(s) }
# file list and directories
phase == 1 {
  isfile[$0] = 1
  n = split($0, parts, "/")
  base = parts[n]; isbase[base] = 1
  p = ""
  for (i = 1; i < n; i++) { p = (i == 1 ? parts[1] : p "/" parts[i]); isdir[p] = 1; if (i == 1) topdir[p] = 1 }
  allfiles[++nfiles] = $0
  next
}
# sections and headings of the documents
phase == 2 {
  if (FNR == 1) { top = ""; sub_seen = 0; infence = 0 }
  if ($0 ~ /^```/) { infence = !infence; next }
  if (infence) next
  if ($0 ~ /^#+[ \t]/) {
    h = $0; sub(/^#+[ \t]+/, "", h)
    heading[FILENAME, lower(h)] = 1; headings[FILENAME] = headings[FILENAME] "\n" lower(h)
    if (match(h, /^[0-9]+(\.[0-9]+)*/)) {
      id = substr(h, 1, RLENGTH)
      sect[FILENAME, id] = 1
      if (id ~ /\./) sub_seen = 1; else { top = id; sub_seen = 0 }
    } else if ($0 ~ /^# /) { top = ""; sub_seen = 0 }
    next
  }
  lines[FILENAME] = lines[FILENAME] "\n" lower(trim($0))
  if (top != "" && !sub_seen && match($0, /^[0-9]+\. /)) {
    k = substr($0, 1, RLENGTH - 2)
    sect[FILENAME, top "." k] = 1
  }
  next
}
function has_named(doc, name,    l) {
  name = lower(name)
  l = headings[doc] "\n" lines[doc] "\n"
  # a heading or a line starting with the name (markup like ** or ` allowed before it)
  return index(headings[doc] "\n", "\n" name) > 0 || index(l, "\n" name) > 0 ||
         index(l, "\n**" name) > 0 || index(l, "\n* **" name) > 0
}
function check_section(doc, id) {
  sub(/\.+$/, "", id)
  nsect++
  if (!((doc, id) in sect)) bad("\"" doc " §" id "\": no section " id " in " doc)
}
# parse "§a, §b-§c, §d/§e" at the start of s, checking each against doc;
# returns the length consumed
function sections(doc, s,    consumed, m, id, rest) {
  consumed = 0
  while (1) {
    rest = substr(s, consumed + 1)
    if (!match(rest, /^§[0-9]+(\.[0-9]+)*/)) break
    id = substr(rest, 3, RLENGTH - 2)
    check_section(doc, id)
    consumed += RLENGTH
    rest = substr(s, consumed + 1)
    if (match(rest, /^[ \t]*(-|–|,|\/|and|to)[ \t]*§/)) { consumed += RLENGTH - 2; continue }
    break
  }
  return consumed
}
function path_exists(p,    re, i) {
  if (p in isfile || p in isdir) return 1
  if (index(p, "*") || index(p, "[")) {
    re = p; gsub(/\./, "\\.", re); gsub(/\*/, "[^/]*", re); re = "^" re "$"
    for (i = 1; i <= nfiles; i++) if (allfiles[i] ~ re) return 1
    for (d in isdir) if (d ~ re) return 1
  }
  return 0
}
phase == 3 {
  if (FILENAME == self) next
  line = $0
  isdoc = (FILENAME ~ /^docs\/.*\.md$/ || FILENAME == "README.md")
  # nothing outside the repository
  if (line ~ /\.\.\/shared/) bad("points outside the repository (../shared)")
  # bare NAME.md must be a file of the repository
  s = line
  while (match(s, /(^|[^A-Za-z0-9_.\/<>-])[A-Za-z0-9_-]+\.md([^A-Za-z0-9_]|$)/)) {
    t = substr(s, RSTART, RLENGTH); s = substr(s, RSTART + RLENGTH - 1)
    sub(/^[^A-Za-z0-9_-]/, "", t); sub(/[^A-Za-z0-9_]$/, "", t); sub(/\.md.*/, ".md", t)
    if (!(t in isbase)) bad("cites " t ", which is not a file of the repository")
  }
  # doc citations: docs/X.md or README.md, then sections or a quoted name
  s = line; out = ""
  while (match(s, /(docs\/[A-Za-z0-9_-]+\.md|README\.md)/)) {
    doc = substr(s, RSTART, RLENGTH)
    out = out substr(s, 1, RSTART + RLENGTH - 1)
    s = substr(s, RSTART + RLENGTH)
    if (!(doc in isfile)) { bad("cites " doc ", which does not exist"); continue }
    if (match(s, /^`?[ \t]*\(?§/)) {
      lead = RLENGTH - 2
      c = sections(doc, substr(s, lead + 1))
      s = substr(s, lead + c + 1)
    } else if (match(s, /^(,[ \t]*|[ \t]+)\(?"[^"]+"/)) {
      q = substr(s, 1, RLENGTH); sub(/^[^"]*"/, "", q); sub(/"$/, "", q)
      nnamed++
      if (!has_named(doc, q)) bad("\"" doc "\" has no heading or line \"" q "\"")
      s = substr(s, RLENGTH + 1)
    }
  }
  rest = out s
  # bare section numbers
  if (FILENAME == "docs/sampler.md" || FILENAME == "docs/flow.md" || !isdoc) bare = "docs/algorithm.md"
  else bare = FILENAME
  s = rest
  while (match(s, /§[0-9]+(\.[0-9]+)*/)) {
    st = RSTART; ln = RLENGTH   # sections() runs match() itself
    pre = substr(s, 1, st - 1)
    if (pre ~ /(docs\/[A-Za-z0-9_-]+\.md|README\.md)`?[ \t]*\(?$/) { s = substr(s, st + ln); continue }
    c = sections(bare, substr(s, st))
    s = substr(s, st + (c > 0 ? c : ln))
  }
  # file paths in the documents
  if (isdoc) {
    s = line
    while (match(s, /[][A-Za-z0-9_.*-]+(\/[][A-Za-z0-9_.*-]+)+/)) {
      p = substr(s, RSTART, RLENGTH); pre = substr(s, 1, RSTART - 1); s = substr(s, RSTART + RLENGTH)
      sub(/[.]+$/, "", p)
      split(p, parts, "/")
      if (!(parts[1] in topdir) || pre ~ /[A-Za-z0-9_>:\/.-]$/) continue
      npath++
      if (!path_exists(p)) bad("cites " p ", which is not in the repository")
    }
    s = line
    while (match(s, /`[A-Za-z0-9_-]+(\.\[[a-z]+\]|\.[a-z]+)`/)) {
      t = substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH)
      if (t !~ /\.(c|h|sh|\[[a-z]+\])$/) continue
      if (match(t, /\.\[[a-z]+\]$/)) {
        stem = substr(t, 1, RSTART); exts = substr(t, RSTART + 2, RLENGTH - 3)
        for (i = 1; i <= length(exts); i++) {
          if (!((stem substr(exts, i, 1)) in isbase)) bad("cites " stem substr(exts, i, 1) ", which is not in the repository")
        }
      } else if (!(t in isbase)) bad("cites " t ", which is not in the repository")
    }
  }
  next
}
END {
  if (nbad) { printf "%d broken reference(s)\n", nbad; exit 1 }
  printf "check-doc-refs: %d section references, %d named references, %d paths: all resolve\n", nsect, nnamed, npath
}
' phase=1 "$list" phase=2 "${docs[@]}" phase=3 "${texts[@]}"
