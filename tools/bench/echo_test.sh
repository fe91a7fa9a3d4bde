#!/usr/bin/env bash
# Tests the actionloop echo action (echo.c): pipes actionloop lines into it
# with fd 3 redirected to a file and checks what it wrote there.
#   tools/bench/echo_test.sh        # builds .work/echo first
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$here/.work"
mkdir -p "$work"
cc -O2 -Wall -Wextra -Werror "$here/echo.c" -o "$work/echo"

tmp="$(mktemp -d "$work/echo-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
fail=0

check() { # name expected-file actual-file
    if cmp -s "$2" "$3"; then
        echo "ok   $1"
    else
        echo "FAIL $1"
        diff -u "$2" "$3" || true
        fail=1
    fi
}

# 1. three lines, with the ack; nested braces, escaped quotes and braces
#    inside strings, "value" not first, a decoy "value" key nested elsewhere.
cat >"$tmp/in1" <<'EOF'
{"value":{"n":1,"msg":"hello"},"namespace":"_","action_name":"/_/echo","activation_id":"a1","deadline":"1"}
{"action_name":"/_/echo","meta":{"value":{"decoy":true}},"value":{"a":{"b":{"c":[1,{"d":"}"}]}},"s":"say \"hi\" {not} a \\ brace\\","u":"\u007b"} ,"deadline":"2"}
{ "namespace" : "_" , "value" : { "empty" : {} , "arr" : [ ] } }
EOF
cat >"$tmp/want1" <<'EOF'
{"ok":true}
{"n":1,"msg":"hello"}
{"a":{"b":{"c":[1,{"d":"}"}]}},"s":"say \"hi\" {not} a \\ brace\\","u":"\u007b"}
{ "empty" : {} , "arr" : [ ] }
EOF
__OW_WAIT_FOR_ACK=1 "$work/echo" <"$tmp/in1" 3>"$tmp/out1"
check "three lines with ack, nested braces, escaped quotes" "$tmp/want1" "$tmp/out1"

# 2. no ack when __OW_WAIT_FOR_ACK is empty; a missing or non-object value
#    answers {}; a last line without a newline still gets an answer.
printf '%s\n%s\n%s' '{"namespace":"_"}' '{"value":[1,2]}' '{"value":{"last":"no newline"}}' >"$tmp/in2"
printf '%s\n%s\n%s\n' '{}' '{}' '{"last":"no newline"}' >"$tmp/want2"
__OW_WAIT_FOR_ACK='' "$work/echo" <"$tmp/in2" 3>"$tmp/out2"
check "no ack, missing/non-object value, no final newline" "$tmp/want2" "$tmp/out2"

# 3. one line far longer than the initial 64 KiB buffer.
big="$(head -c 300000 /dev/zero | tr '\0' 'x')"
printf '{"value":{"big":"%s"}}\n' "$big" >"$tmp/in3"
printf '{"big":"%s"}\n' "$big" >"$tmp/want3"
"$work/echo" <"$tmp/in3" 3>"$tmp/out3"
check "a 300 KB line" "$tmp/want3" "$tmp/out3"

# 4. exits 0 on EOF with no input.
"$work/echo" </dev/null 3>"$tmp/out4"
if [ ! -s "$tmp/out4" ]; then echo "ok   empty input, exit 0"; else echo "FAIL empty input"; fail=1; fi

# 5. a line split across reads, then two lines in one read.
{ printf '{"value":{"a'; sleep 0.2; printf '":1}}\n{"value":{"b":2}}\n'; } |
    "$work/echo" 3>"$tmp/out5"
printf '%s\n%s\n' '{"a":1}' '{"b":2}' >"$tmp/want5"
check "a line split across reads" "$tmp/want5" "$tmp/out5"

exit $fail
