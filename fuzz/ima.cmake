# IMA parsers of agent input (ASCII and binary measurement lists, run through
# the whole evaluator) and of operator input (runtime policy JSON, DSSE).
vouch_fuzzer(fuzz_ima_ascii_log ima_ascii vouch::core_ima)
vouch_fuzzer(fuzz_ima_binary_log ima_binary vouch::core_ima)
vouch_fuzzer(fuzz_ima_policy ima_policy vouch::core_ima)
