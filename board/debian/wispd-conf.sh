#!/bin/sh
# board/debian/wispd-conf.sh OUT WISPD [ARGS...] - writes /etc/wisp/wispd.conf
# from wispd's own settings table: `wispd --help` prints one line per row of
# core/cfg.c ("  --KEY  HELP (default: DEFAULT)"), and every key becomes a
# commented-out "KEY = DEFAULT" under its doc line. The build runs this
# (cross builds through qemu), so the file cannot drift from cfg.c.
set -eu
out=$1
shift
"$@" --help >"$out.help"
{
    cat <<'HEAD'
# /etc/wisp/wispd.conf - settings of wispd (the Wisp appliance daemon).
#
# Generated from wispd's settings table (`wispd --help`): every key is listed
# with its built-in default, commented out. Uncomment a line to change it.
# Order of precedence, lowest first: the built-in defaults, the board profile
# (board-dir/BOARD.conf, chosen by `board`), this file, command-line flags
# (`wispd --KEY VALUE`). `wispd --print-config` shows the values in effect.
# Syntax: KEY = VALUE, one per line; '#' starts a comment.
HEAD
    awk '
    /^  --/ {
        line = substr($0, 5)
        key = line
        sub(/ .*/, "", key)
        rest = substr(line, length(key) + 1)
        sub(/^ +/, "", rest)
        def = ""
        if (match(rest, / \(default: [^(]*\)$/)) {
            def = substr(rest, RSTART + 11, RLENGTH - 12)
            rest = substr(rest, 1, RSTART - 1)
        }
        if (def == "none")
            def = ""
        n++
        printf "\n# %s\n#%s = %s\n", rest, key, def
    }
    END { if (n < 10) { print "wispd-conf.sh: too few settings in --help" > "/dev/stderr"; exit 1 } }
    ' "$out.help"
} >"$out.tmp"
rm -f "$out.help"
mv "$out.tmp" "$out"
