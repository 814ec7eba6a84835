# usage: /usr/bin/python3 ima_keylime_check.py KEYLIME_SRC LOG POLICY
# End to end with Keylime's own verifier code (keylime/ima/ima.py, checked
# with commit 9b1f6e6a): read the log and the policy, then
# process_measurement_list. KEYLIME_SRC holds the `keylime` package.
import json, sys, time
sys.path.insert(0, sys.argv.pop(1))
t0 = time.perf_counter()
from keylime.ima import ima
from keylime.common.algorithms import Hash
t1 = time.perf_counter()
lines = open(sys.argv[1]).read().split("\n")
policy = json.load(open(sys.argv[2]))
t2 = time.perf_counter()
running, failure = ima.process_measurement_list(None, lines, policy, hash_alg=Hash.SHA1)
t3 = time.perf_counter()
print("pcr10 sha1:", running)
print("failures:", failure.get_event_ids()[:5] if hasattr(failure, "get_event_ids") else failure)
print(f"import {t1-t0:.2f}s read+json {t2-t1:.2f}s process {t3-t2:.2f}s total(no import) {t3-t1:.2f}s")
