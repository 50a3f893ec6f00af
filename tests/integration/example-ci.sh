#!/usr/bin/env bash
# examples/ci, run as its README and CI snippets say: box add, corral lock,
# corral up --locked --report junit:FILE (db, app, web in depends_on order,
# each up once its probes pass), ./test.sh (through web to app to db, then
# reset db), the JUnit report valid against tests/junit.xsd, destroy.
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny)
expect_out "box add (README)" 0 "corral/tiny" corral box add "$(dirname "$box")/catalog.json"
example ci
export PATH=$(dirname "$CORRAL"):$PATH # test.sh runs `corral` too

for f in .github-workflow.yml .gitlab-ci.yml; do
	check "$f runs up --locked with a JUnit report, the test, destroy" \
		grep -q 'corral up --locked --report junit:corral-report.xml' "$f"
	check "... ./test.sh and destroy" grep -qz './test.sh.*corral destroy -f' "$f"
done
expect_out "corral lock" 0 "" corral lock
check "corral.lock pins each machine" test "$(grep -c '"digest"' corral.lock)" = 3
run_ok "corral up --locked --report junit:corral-report.xml" corral up --locked --report junit:corral-report.xml
check "db, then app, then web, each after the probes of the one before" \
	grep -qz 'db: ready: http.*app: creating.*app: ready: http.*web: creating.*web: ready: command' <<<"$out"
check "the report is valid JUnit (tests/junit.xsd)" \
	xmllint --noout --schema "$ROOT/tests/junit.xsd" corral-report.xml 2>/dev/null
check "... with each probe as a test case" grep -q 'testcase name="probe tcp 5000"' corral-report.xml
expect_out "./test.sh" 0 "ok - reset undid it" ./test.sh
expect_out "corral destroy -f" 0 "web: destroyed" corral destroy -f
