// SPDX-License-Identifier: Apache-2.0
// placeholder until the CLI lands in this session
int main() { return 0; }
