# Leaves processes behind: one that rewrites files later, one that holds the output pipes open.
import subprocess
import sys

subprocess.Popen([sys.executable, "-c", "import time, glob\ntime.sleep(20)\n"
                  "[open(p, 'w').write('late') for p in glob.glob('/**/grades.csv', recursive=True)]"],
                 start_new_session=True)
subprocess.Popen(["sleep", "600"])
subprocess.Popen(["sh", "-c", "sleep 600 &"], stdout=sys.stdout.fileno() if hasattr(sys.stdout, "fileno") else None)
print("left processes behind")
