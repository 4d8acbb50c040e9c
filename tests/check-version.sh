#!/bin/sh
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
# VERSION is the one source of the version number: configure, --version,
# the man page, the RPM spec and debian/changelog must all agree with it.
# Run by "make check" from the build directory; srcdir is set by automake.
set -u
srcdir=${srcdir:-.}
: "${ECHOPOST:=src/echopost}"
version=$(cat "$srcdir/VERSION")
status=0

agree() {	# agree WHERE FOUND
	if [ "$2" = "$version" ]; then
		echo "ok: $1 says $2"
	else
		echo "FAIL: $1 says '$2' but VERSION says '$version'"
		status=1
	fi
}

agree configure "$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' config.h)"
# --version may carry a snapshot suffix: 1.0.0-rc1.
agree "echopost --version" \
    "$("$ECHOPOST" --version | sed -n '1s/^echopost \([0-9.]*\).*/\1/p')"
agree "man/echopost.1 (.Os)" \
    "$(sed -n 's/^\.Os EchoPost //p' "$srcdir/man/echopost.1")"
agree rpm/echopost.spec "$(sed -n 's/^Version: *//p' rpm/echopost.spec)"
# Debian: 1.0.0-1, or 1.0.0~rc1-1 for a snapshot.
agree debian/changelog "$(sed -n '1s/^echopost (\([0-9.]*\).*/\1/p' \
    "$srcdir/debian/changelog")"
[ "$status" -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit "$status"
