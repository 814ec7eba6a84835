-- Onboarding by EK-CA mapping. Only adds.
--
-- A challenge issued to an agent that joined without a token, its tenant
-- chosen by the registrar's EK-CA -> tenant mapping (registrar.ek_ca_tenants):
-- like a token's, it may be activated without a client certificate.
ALTER TABLE registration_challenges
  ADD COLUMN IF NOT EXISTS ek_ca_join boolean NOT NULL DEFAULT false;

