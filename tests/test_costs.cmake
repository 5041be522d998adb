# The suite's longest test cases and their rough cost in seconds (the sanitized build's times on
# the 2-core CI machine; the browser test exists in builds without sanitizers only). CTest starts
# tests in descending order of COST, so with these the long cases start first and the many short
# ones fill in around them, instead of a long case starting last and running alone at the end.
# Once a build directory has run its tests, CTest orders by the times it measured
# (Testing/Temporary/CTestCostData.txt) instead.
#
# Included by every test directory's CTestTestfile.cmake after its discovered tests (see
# ledger_test_suite in tests/CMakeLists.txt); names not in that directory are ignored. A renamed
# test case loses its cost here silently, and only its start order changes.
set_tests_properties(
  [=[projections_tests:a projection killed at random moments equals a fresh fold after restart]=]
  PROPERTIES COST 55)
set_tests_properties(
  [=[jetstream_tests:one node down: publishing continues, and with two down it waits, then catches up]=]
  PROPERTIES COST 53)
set_tests_properties(
  [=[dashboard_tests:in Chromium, the dashboard retries an order in Fulfillment Error until Complete]=]
  PROPERTIES COST 50)
set_tests_properties(
  [=[projections_tests:order rows round-trip packed, older flat rows still read, damage is an error]=]
  PROPERTIES COST 10)
set_tests_properties(
  [=[fulfillment_tests:a ledger killed at random moments fulfills every line exactly once after restart]=]
  PROPERTIES COST 40)
set_tests_properties(
  [=[eventstore_tests:after SIGKILL at random moments every acknowledged append is whole and the log verifies]=]
  PROPERTIES COST 25)
set_tests_properties(
  [=[jetstream_tests:ledgerd killed with SIGKILL mid-publish, again and again: the stream gets every event once, in order]=]
  PROPERTIES COST 20)
set_tests_properties(
  [=[server_tests:ledgerctl against a running ledgerd: status, events, tail, retry, revoke, rebuild]=]
  PROPERTIES COST 17)
set_tests_properties(
  [=[domain_tests:random command sequences reach only possible states, and the fold reproduces them]=]
  PROPERTIES COST 12)
set_tests_properties(
  [=[eventstore_tests:garbage in place of a stored record is corruption naming its position]=]
  PROPERTIES COST 10)
set_tests_properties(
  [=[server_tests:a restart after SIGKILL keeps every acknowledged write]=]
  PROPERTIES COST 10)
set_tests_properties(
  [=[jetstream_tests:a purged stream gets the purged positions again, in order and once]=]
  PROPERTIES COST 15)
set_tests_properties(
  [=[jetstream_tests:with NATS gone, the last error says why nothing is acknowledged]=]
  PROPERTIES COST 15)
set_tests_properties(
  [=[jetstream_tests:a stream deleted or lost is created again and gets the whole log, without a restart]=]
  PROPERTIES COST 10)
set_tests_properties(
  [=[server_tests:ledgerctl offline: check reports a projection behind the log, ranges, merkle]=]
  PROPERTIES COST 10)
set_tests_properties(
  [=[server_tests:ledgerctl revoke: the exit code says how it ended, and status counts failed revocations]=]
  PROPERTIES COST 13)
set_tests_properties(
  [=[audit_tests:ledgerctl: digests against an export and the data directory]=]
  PROPERTIES COST 8)
set_tests_properties(
  [=[audit_tests:ledgerctl: prove and verify-proof, inclusion and consistency]=]
  PROPERTIES COST 8)
