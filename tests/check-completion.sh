#!/bin/sh
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
# check-completion.sh: the bash completion completes echopost's options and
# their values, as bash-completion loads it.
set -eu
srcdir=${srcdir:-.}
lib=/usr/share/bash-completion/bash_completion
if [ ! -r "$lib" ]; then
	echo "SKIP: bash-completion is not installed ($lib)"
	exit 77
fi
complete_line() {	# the words bash would offer for the command line $*
	bash -c '. "$1"; . "$2"; shift 2
	    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
	    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
	    _echopost; echo "${COMPREPLY[*]}"' sh "$lib" \
	    "$srcdir/completion/echopost" "$@"
}
fail=0
expect() {
	want=$1; shift
	got=$(complete_line "$@")
	if [ "$got" != "$want" ]; then
		echo "FAIL: '$*' completes to '$got', not '$want'"
		fail=1
	fi
}
expect "--status" echopost --st
expect "--cacert --capath" echopost --ca
expect "warn" echopost --log-level w
expect "-datanadhi" echopost -d
expect "--give-up" echopost --gi
expect "" echopost --give-up 1
expect "--dump" echopost --du
[ "$fail" -eq 0 ] && echo "completion: all expected"
exit "$fail"
