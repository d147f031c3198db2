#!/bin/sh
# flake8 over every Python file and shellcheck over every shell script of the repository (the ctest
# lint_python_shell). Shell scripts are the *.sh files and files whose first line names sh or bash
# (e.g. .ci/run). Configuration: .flake8; shellcheck's defaults. Build folders and node_modules are skipped.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
missing=""
for tool in flake8 shellcheck; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  echo "lint.sh: missing program(s):$missing; install with: scripts/deps.sh test" >&2
  exit 2
fi
files() {  # the repository's files, without build output and installed node modules
  find . \( -name .git -o -name 'build' -o -name 'build-*' -o -name node_modules \) -prune -o -type f -print
}
shell_scripts=$(files | while read -r f; do
  case "$f" in
    *.sh) echo "$f" ;;
    *.py | *.cpp | *.h | *.md | *.json | *.yaml | *.mjs | *.jpg | *.png | *.csv) ;;
    *) head -n 1 "$f" 2>/dev/null | grep -Eq '^#!.*/(env )?(ba|da)?sh( |$)' && echo "$f" ;;
  esac
done)
status=0
files | grep '\.py$' | xargs flake8 || status=1
# shellcheck disable=SC2086  # one argument per script path (none has a space)
shellcheck $shell_scripts || status=1
[ "$status" -eq 0 ] && echo "lint.sh: flake8 and shellcheck clean ($(files | grep -c '\.py$') Python files, $(echo "$shell_scripts" | wc -l) shell scripts)"
exit "$status"
