# libFuzzer targets for the transparency log's parsers of untrusted bytes
# (vouch::core_translog): proofs and signed tree heads. Seeds: a valid
# proof and a signed-head-shaped input (corpus/translog_*).
vouch_fuzzer(fuzz_translog_proof translog_proof vouch::core_translog)
vouch_fuzzer(fuzz_translog_tree_head translog_tree_head vouch::core_translog)
