# What the verifier does with an agent's Evidence (core/attest/evidence.h):
# protobuf decoding, bounds, and the whole evaluation against the fixture of
# verifier_evidence_fixture.h (pinned software AIK, runtime policy, boot
# reference state learned from tests/data). Seeds: made by fuzz/seedgen,
# quotes that verify, IMA logs and whole boot logs (hence MAX_LEN). Links
# core only (no gRPC, no libpq).
vouch_fuzzer(fuzz_verifier_evidence verifier_evidence MAX_LEN 131072 RUNS 5000
  vouch::core_attest)
target_compile_definitions(fuzz_verifier_evidence PRIVATE
  VOUCH_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data")
# The agent's Hello (core/attest/hello.h). Seeds: Hellos in protobuf form.
vouch_fuzzer(fuzz_attest_hello attest_hello vouch::core_attest)
# Offline audit bundles (core/audit/bundle.h): JSON parse and the whole
# offline verification. Seeds: small bundles in corpus/audit_bundle.
vouch_fuzzer(fuzz_audit_bundle audit_bundle MAX_LEN 65536 RUNS 5000
  vouch::core_audit)
# Attestation history page tokens (core/audit/history_query.h), sent back
# by Admin clients. Seeds: tokens of the target's query.
vouch_fuzzer(fuzz_history_token history_token vouch::core_audit)
