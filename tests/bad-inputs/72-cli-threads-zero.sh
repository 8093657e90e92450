# --threads 0
# exit: 2
# stderr: --threads expects an integer in [1, 4096], got '0'
petal train --synthetic --threads 0
