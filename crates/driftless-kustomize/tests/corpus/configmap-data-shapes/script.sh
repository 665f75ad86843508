#!/bin/sh
set -e
echo "hello $1"
