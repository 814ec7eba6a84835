# The verifier's handling of Evidence (agent input): protobuf decoding,
# bounds, and the whole evaluation. Seeds: the golden RSA quote with IMA
# chunks of the Keylime test log.
vouch_fuzzer(fuzz_verifier_evidence verifier_evidence vouch::verifier)
