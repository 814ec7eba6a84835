-- PCR policies: the enrollment's policy of kind PCR (expected PCR values),
-- next to its runtime and boot policies; NULL when none is enrolled.
ALTER TABLE agent_state ADD COLUMN pcr_policy text;
