# What the verifier does with an agent's Evidence (core/attest/evidence.h):
# protobuf decoding, bounds, and the whole evaluation. Seeds: the golden RSA
# quote with IMA chunks of the Keylime test log. Links core only (no gRPC,
# no libpq).
vouch_fuzzer(fuzz_verifier_evidence verifier_evidence vouch::core_attest)
# The agent's Hello (core/attest/hello.h). Seeds: Hellos in protobuf form.
vouch_fuzzer(fuzz_attest_hello attest_hello vouch::core_attest)
