#!/bin/sh
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
# check-docs.sh: what the docs list, checked against the tree.
# The man page's table of events ("Every event, with its level") is the
# admin's reference for what agent.log says: it must name every event the
# code logs, and no event the code does not. The README's Source tree
# must name every .c file under src/ but protoc-c's.
# An event name in the code is a string literal right after a level
# (log_event(LEVEL_WARN, "name", ...)) or given to
# spool_names_set_aside(), whose names end in _damaged.
# Every option in the table (src/options_table.c) has an entry in the man
# page's OPTIONS section and is offered by the bash completion, and
# neither names an option the table lacks.
set -u
srcdir=${srcdir:-.}
code=$(mktemp) man=$(mktemp) table=$(mktemp) listed=$(mktemp)
trap 'rm -f "$code" "$man" "$table" "$listed"' EXIT
cat "$srcdir"/src/*.c | tr '\n' ' ' |
    grep -o -E 'LEVEL_[A-Z]+, *"[a-z_]+"|"[a-z_]+_damaged"' |
    sed 's/.*"\([a-z_]*\)"$/\1/' | sort -u > "$code"
sed -n '/^Every event, with its level:$/,/^\.El$/s/^\.It Cm \([a-z_]*\)$/\1/p' \
    "$srcdir/man/echopost.1" | sort > "$man"
if [ ! -s "$code" ] || [ ! -s "$man" ]; then
	echo "FAIL: found no events (code: $(wc -l < "$code"), man page:" \
	    "$(wc -l < "$man"))"
	exit 1
fi
status=0

# differ KIND A WHERE_A B WHERE_B: the names in sorted files A and B, each
# of them in both.
differ() {
	for name in $(comm -23 "$2" "$4"); do
		echo "FAIL: $3 has the $1 $name, which $5 lacks"
		status=1
	done
	for name in $(comm -13 "$2" "$4"); do
		echo "FAIL: $5 has the $1 $name, which $3 lacks"
		status=1
	done
}

differ event "$code" "the code" "$man" "the man page's table"
if [ -n "$(uniq -d "$man")" ]; then
	echo "FAIL: the man page lists twice: $(uniq -d "$man")"
	status=1
fi
echo "$(wc -l < "$code") events in the code, $(wc -l < "$man") in the man page"
for file in "$srcdir"/src/*.c; do
	name=${file##*/}
	case $name in *.pb-c.c) continue ;; esac	# made by the build
	if ! grep -q "^    $name " "$srcdir/README"; then
		echo "FAIL: README's Source tree does not name src/$name"
		status=1
	fi
done

# compare WHAT: the options $listed names against the table's.
compare_options() {
	if [ ! -s "$listed" ]; then
		echo "FAIL: found no options in $1"
		status=1
		return
	fi
	differ option "$table" "the option table" "$listed" "$1"
}
sed -n 's/^[[:space:]]*{ \.name = "\([a-z-]*\)".*/\1/p' \
    "$srcdir/src/options_table.c" | sort > "$table"
# Each .It of OPTIONS, as ".It Fl datanadhi Ar dir" or
# ".It Fl h , Fl -help": the names, not the letters.
sed -n '/^\.Sh OPTIONS$/,/^\.Sh /p' "$srcdir/man/echopost.1" |
    grep '^\.It Fl ' | grep -o -E 'Fl -?[a-z][a-z-]+' |
    sed 's/^Fl -*//' | sort -u > "$listed"
compare_options "the man page's OPTIONS"
# The words offered for a word that starts with a dash.
sed -n "/compgen -W '-/,/'/p" "$srcdir/completion/echopost" |
    grep -o -E -- "-{1,2}[a-z][a-z-]+" | sed 's/^-*//' | sort -u > "$listed"
compare_options "the bash completion"
echo "$(wc -l < "$table") options in the table"
exit "$status"
