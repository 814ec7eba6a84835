# Fuzzers for vouch::core_boot (included by fuzz/CMakeLists.txt): the event
# log parser with replay, decoders and policy evaluation behind it, and the
# reference-state (JSON) reader.
vouch_fuzzer(fuzz_boot_event_log boot_event_log vouch::core_boot)
vouch_fuzzer(fuzz_boot_policy boot_policy vouch::core_boot)
# The PCR policy (expected PCR values) reader and its evaluation.
vouch_fuzzer(fuzz_pcr_policy pcr_policy vouch::core_boot)
