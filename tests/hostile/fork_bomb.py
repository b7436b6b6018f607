# Forks until the sandbox refuses (bounded here so that an unsealed grader survives the test).
import os
import time

children = []
for _ in range(300):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
print("forked", len(children))
