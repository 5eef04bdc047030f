# SPDX-License-Identifier: Apache-2.0
# A package so that this conftest does not clash with tests/cli/conftest.py ("conftest" module).
