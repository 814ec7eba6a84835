-- Keys an agent's IMA log put on keyrings in the current boot, learned
-- from ima-buf entries its runtime policy accepted (docs/ima.md). They
-- verify the boot's later ima-sig signatures. Written with the replay
-- position (ima_next_entry, pcr10_*) in the verdict's transaction and
-- reset with it at reboot; core::ima::EncodeLearnedKeys' form. Only adds.
ALTER TABLE agent_state ADD COLUMN IF NOT EXISTS ima_learned_keys bytea
  NOT NULL DEFAULT ''::bytea;
