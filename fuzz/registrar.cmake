# The registrar's validation of RegisterRequest (agent input). Seeds: real
# swtpm/tpm2-tools public areas and an EK certificate in protobuf form.
vouch_fuzzer(fuzz_registrar_register registrar vouch::core_attest)
