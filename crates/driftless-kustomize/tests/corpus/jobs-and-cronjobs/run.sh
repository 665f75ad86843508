#!/bin/bash
set -euo pipefail
for table in users orders; do
  echo "vacuum $table"
done
