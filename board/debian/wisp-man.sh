#!/bin/sh
# board/debian/wisp-man.sh PAGE OUT VERSION CMD... - writes the man page
# wispd.8 or wisp.1. The prose is here; the option and command lists come
# from the binary itself (`wispd --help`: one line per row of core/cfg.c's
# settings table; `wisp --help`: the CLI's command table and the offline
# tools), so the pages cannot drift from the code. The build runs this
# (cross builds through qemu), as wispd-conf.sh.
set -eu
page=$1 out=$2 version=$3
shift 3
"$@" --help >"$out.help"

# roff-safe text: backslashes and hyphens escaped, no leading dot or quote
esc() { sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

{
case "$page" in
wispd)
    cat <<HEAD
.TH WISPD 8 "" "wisp $version" "System Administration"
.SH NAME
wispd \\- the Wisp daemon: an OpenWhisk\\-compatible serverless appliance for edge gateways
.SH SYNOPSIS
.B wispd
[\\fB\\-\\-\\fIKEY VALUE\\fR]... [\\fB\\-\\-print\\-config\\fR] [\\fB\\-\\-help\\fR] [\\fB\\-\\-version\\fR]
.SH DESCRIPTION
.B wispd
is one process with one event loop. It serves the Apache OpenWhisk REST API
(\\fI/api/v1\\fR: namespaces, actions, packages, triggers, rules, activations,
web actions under \\fI/api/v1/web\\fR), keeps entities and activations in an LMDB
store in its data directory, runs actions in pre\\-warmed pools of processes or
OCI containers (runc), and takes events from MQTT, webhooks, HTTP pollers and
alarms. When it is ready it writes
.B wispd: ready on http://HOST:PORT
on standard error and sends READY=1 to \\fBNOTIFY_SOCKET\\fR (systemd Type=notify).
.PP
One wispd runs per data directory: it holds \\fIDATA/wispd.lock\\fR, and a second
one exits with an error naming the first one's pid.
.SH OPTIONS
Every option is also a configuration file key (\\fIKEY\\fR = \\fIVALUE\\fR, one per
line, \\fB#\\fR starts a comment). Settings are layered, lowest first: the built\\-in
defaults, the board profile (\\fB\\-\\-board\\fR), the configuration file
(\\fB\\-\\-config\\fR), the command line.
.TP
.B \\-\\-print\\-config
Print the settings in effect, as a configuration file, and exit.
.TP
.B \\-\\-version
Print the version and exit.
HEAD
    # "  --KEY   HELP (default: DEFAULT)" -> .TP entries
    awk '
    /^  --/ {
        line = substr($0, 5); key = line; sub(/ .*/, "", key)
        rest = substr(line, length(key) + 1); sub(/^ +/, "", rest)
        def = ""
        if (match(rest, / \(default: [^(]*\)$/)) {
            def = substr(rest, RSTART + 11, RLENGTH - 12); rest = substr(rest, 1, RSTART - 1)
        }
        n++
        printf "@TP\n@B --%s VALUE\n%s%s\n", key, rest, def == "" ? "." : "; default: " def "."
    }
    END { if (n < 10) { print "wisp-man.sh: too few settings in --help" > "/dev/stderr"; exit 1 } }
    ' "$out.help" | esc | sed -e 's/^@TP$/.TP/' -e 's/^@B /.B /'
    cat <<'TAIL'
.SH BOARD PROFILES
.B \-\-board auto
picks a profile at start and logs which and why: 640 MB of memory or less is
.BR arm\-512 ;
otherwise a device tree (an ARM board) gives
.B pi3
up to 1.5 GB and
.B pi4
above, and a PC gives
.B x86\-small
from 3.5 GB and
.B generic
below. The memory is MemTotal, or the limit of wispd's cgroup when lower.
.SH SIGNALS
.TP
.BR SIGTERM ", " SIGINT
Drain: the listener closes, requests in flight get their answers and running
activations finish (bounded by \fBdrain\-timeout\-s\fR), then wispd exits 0.
.SH ENVIRONMENT
.TP
.B WISP_GUEST_KEY
\fIUUID:KEY\fR: the key of namespace guest when a new data directory is made;
without it a random key is written to \fIDATA/guest.key\fR.
.TP
.B NOTIFY_SOCKET
Where READY=1 goes once the API listens and the pools are up.
.SH FILES
.TP
.I /etc/wisp/wispd.conf
The configuration file of the service: every key, commented out with its default.
.TP
.I /var/lib/wisp
The data directory of the service: \fIdata.mdb\fR (the store), \fIguest.key\fR,
\fIwispd.lock\fR, \fIwork/\fR (workers' directories), imported container images.
.TP
.I /usr/lib/wisp/board/*.conf
Board profiles.
.TP
.I /usr/lib/wisp/kinds.json
The runtime kinds and their launchers.
.SH EXIT STATUS
0 after a clean stop; 1 when it cannot start (the store, the listener, a data
directory in use); 2 for a bad option or configuration file.
.SH SEE ALSO
.BR wisp (1),
.I /usr/share/doc/wisp/README.md
TAIL
    ;;
wisp)
    cat <<HEAD
.TH WISP 1 "" "wisp $version" "User Commands"
.SH NAME
wisp \\- the Wisp command line: wsk's commands against wispd, manifest deploy, and offline administration
.SH SYNOPSIS
.B wisp
.I COMMAND
[\\fIflags\\fR]
.br
.B wisp admin
[\\fB\\-\\-data\\fR \\fIDIR\\fR] \\fICOMMAND\\fR
.br
.B wisp image
[\\fB\\-\\-data\\fR \\fIDIR\\fR] \\fICOMMAND\\fR
.SH DESCRIPTION
.B wisp
speaks the OpenWhisk REST API of
.BR wispd (8)
with the verbs, flags, messages and exit codes of OpenWhisk's
.BR wsk ,
adds \\fBdeploy\\fR and \\fBundeploy\\fR of wskdeploy manifests, and keeps two
offline tools, \\fBadmin\\fR (keys, namespaces, backup, restore) and \\fBimage\\fR
(container images), that work on a data directory without a server.
\\fBwisp\\fR \\fICOMMAND\\fR \\fB\\-\\-help\\fR lists a command's verbs and flags.
.SH COMMANDS
.nf
HEAD
    esc <"$out.help"
    cat <<'TAIL'
.fi
.SH GLOBAL FLAGS
.TP
.BI \-\-apihost " URL"
The API host (\fBAPIHOST\fR of \fI~/.wskprops\fR).
.TP
.BI \-u ", " \-\-auth " UUID:KEY"
The key (\fBAUTH\fR).
.TP
.BR \-i ", " \-\-insecure
Do not check the server's TLS certificate.
.TP
.BI \-\-cacert " FILE"
The CA certificates the server's certificate is checked against.
.TP
.B \-\-json
Print what the server answered, as JSON, for scripts.
.TP
.BR \-v ", " \-\-verbose
Show each request and answer (never the key).
.SH FILES
.TP
.I ~/.wskprops
Properties in wsk's format (\fBAPIHOST\fR, \fBAUTH\fR, \fBNAMESPACE\fR, ...); a file
wsk wrote works, and what wisp does not use is kept.
.SH ENVIRONMENT
.TP
.B WSK_CONFIG_FILE
The properties file instead of \fI~/.wskprops\fR.
.SH EXIT STATUS
0 on success; 1 when the server refuses (its error and code are printed) or a
file cannot be read; 2 for a usage error (with the usage line); 3 when the
server cannot be reached; 202 when a blocking invoke ran out of time and the
activation goes on.
.SH EXAMPLES
.nf
wisp property set \-\-apihost http://127.0.0.1:3233 \-\-auth "$(cat /var/lib/wisp/guest.key)"
wisp action create hello hello.py
wisp action invoke hello \-p name edge \-\-result
wisp trigger create reading \-\-feed /whisk.system/mqtt/subscribe \-p topic sensors/#
wisp rule create on\-reading reading hello
wisp deploy \-m manifest.yaml \-d deployment.yaml
wisp admin \-\-data /var/lib/wisp backup /srv/wisp.backup
.fi
.SH SEE ALSO
.BR wispd (8),
.BR wsk (1),
.I /usr/share/doc/wisp/README.md
TAIL
    ;;
*)
    echo "wisp-man.sh: unknown page '$page'" >&2
    exit 2
    ;;
esac
} >"$out.tmp"
rm -f "$out.help"
mv "$out.tmp" "$out"
