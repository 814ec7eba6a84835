# The registrar's validation of RegisterRequest (agent input). Seeds: real
# swtpm/tpm2-tools public areas and an EK certificate in protobuf form.
vouch_fuzzer(fuzz_registrar_register registrar vouch::core_attest)
# An onboarding agent's certificate request and join token. Seeds: a P-256
# request made by `openssl req`, and a token.
vouch_fuzzer(fuzz_registrar_csr registrar_csr vouch::core_attest)
# Label selectors of fleet operations (operator input over the Admin API).
# Seeds: selectors of every form.
vouch_fuzzer(fuzz_label_selector label_selector vouch::core_attest)
