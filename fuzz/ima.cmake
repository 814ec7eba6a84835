# IMA parsers of agent input (ASCII and binary measurement lists, run through
# the whole evaluator) and of operator input (runtime policy JSON, DSSE).
vouch_fuzzer(fuzz_ima_ascii_log ima_ascii vouch::core_ima)
vouch_fuzzer(fuzz_ima_binary_log ima_binary vouch::core_ima)
vouch_fuzzer(fuzz_ima_policy ima_policy vouch::core_ima)
# The ima-sig signature field against fixed RSA and ECDSA keys, and the
# Keylime allowlist -> runtime policy conversion (operator input to
# vouchctl policy convert) with the loader behind it.
vouch_fuzzer(fuzz_ima_signature ima_signature vouch::core_ima)
vouch_fuzzer(fuzz_ima_allowlist ima_allowlist vouch::core_ima)
