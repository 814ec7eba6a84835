# libFuzzer targets for every TPM parser of agent- or operator-supplied bytes
# (vouch::core_tpm). Seeds are real tpm2-tools output from tests/tpm/data.
vouch_fuzzer(fuzz_tpm_attest tpm_attest vouch::core_tpm)
vouch_fuzzer(fuzz_tpm_signature tpm_signature vouch::core_tpm)
vouch_fuzzer(fuzz_tpm_public tpm_public vouch::core_tpm)
vouch_fuzzer(fuzz_tpm_pcr_selection tpm_pcr_selection vouch::core_tpm)
vouch_fuzzer(fuzz_tpm_pcr_file tpm_pcr_file vouch::core_tpm)
vouch_fuzzer(fuzz_tpm_ek_cert tpm_ek_cert vouch::core_tpm)
vouch_fuzzer(fuzz_tpm_quote tpm_quote vouch::core_tpm)
# The registrar's MakeCredential over an agent's EK public area and AIK
# Name. Seeds: TCG EK template public areas (RSA 2048, P-256, P-384).
vouch_fuzzer(fuzz_tpm_credential tpm_credential vouch::core_tpm)
