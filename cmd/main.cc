// SPDX-License-Identifier: Apache-2.0
// `ctfs`: the CryptoTensors FS command line. Subcommand dispatch; every subcommand lives in
// its own file. No exception escapes main: anything unexpected is reported and exits 1.
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdio>
#include <exception>
#include <string>

#include "cmd/exit_codes.h"
#include "cmd/subcommands.h"

namespace {

// Keys and plaintext pass through this process: no core dumps, no ptrace by other users.
void HardenProcess() {
  struct rlimit no_core = {0, 0};
  (void)setrlimit(RLIMIT_CORE, &no_core);
  (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

// CheckSubcommand catches what CLI11 reports confusingly: no arguments at all (it says "A
// subcommand is required") and a first word that is no subcommand (it says the same, or
// "extra arguments"). Returns true when the command line may go on to CLI11.
bool CheckSubcommand(const CLI::App& app, int argc, char** argv) {
  std::string names;
  for (const CLI::App* sub : app.get_subcommands({})) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
  }
  if (argc < 2) {
    std::fprintf(stderr, "%s\nctfs: error: a command is required (commands: %s)\n",
                 app.help().c_str(), names.c_str());
    return false;
  }
  const char* first = argv[1];
  if (first[0] == '-') return true;  // --help, --version, or an option CLI11 will reject
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (sub->check_name(first)) return true;
  }
  std::fprintf(stderr, "ctfs: error: unknown command '%s' (commands: %s; see ctfs --help)\n", first,
               names.c_str());
  return false;
}

int Main(int argc, char** argv) {
  HardenProcess();
  CLI::App app{
      "ctfs: CryptoTensors FS. Create, inspect and verify encrypted safetensors models\n"
      "(CryptoTensors format, compatible with the `cryptotensors` package), and mount them\n"
      "read-only as plain safetensors for unmodified loaders.",
      "ctfs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ctfs 0.1.0");
  ctfs::cmd::KeygenArgs keygen;
  ctfs::cmd::EncryptArgs encrypt;
  ctfs::cmd::DecryptArgs decrypt;
  ctfs::cmd::InspectArgs inspect;
  ctfs::cmd::VerifyArgs verify;
  ctfs::cmd::MountArgs mount;
  ctfs::cmd::UmountArgs umount;
  ctfs::cmd::CheckConfigArgs check_config;
  ctfs::cmd::StatusArgs status;
  CLI::App* keygen_cmd = ctfs::cmd::AddKeygen(app, keygen);
  CLI::App* encrypt_cmd = ctfs::cmd::AddEncrypt(app, encrypt);
  CLI::App* decrypt_cmd = ctfs::cmd::AddDecrypt(app, decrypt);
  CLI::App* inspect_cmd = ctfs::cmd::AddInspect(app, inspect);
  CLI::App* verify_cmd = ctfs::cmd::AddVerify(app, verify);
  CLI::App* mount_cmd = ctfs::cmd::AddMount(app, mount);
  CLI::App* umount_cmd = ctfs::cmd::AddUmount(app, umount);
  CLI::App* check_config_cmd = ctfs::cmd::AddCheckConfig(app, check_config);
  CLI::App* status_cmd = ctfs::cmd::AddStatus(app, status);
  if (!CheckSubcommand(app, argc, argv)) return ctfs::cmd::kExitUsage;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? ctfs::cmd::kExitOk : ctfs::cmd::kExitUsage;
  }
  if (keygen_cmd->parsed()) return ctfs::cmd::RunKeygen(keygen);
  if (encrypt_cmd->parsed()) return ctfs::cmd::RunEncrypt(encrypt);
  if (decrypt_cmd->parsed()) return ctfs::cmd::RunDecrypt(decrypt);
  if (inspect_cmd->parsed()) return ctfs::cmd::RunInspect(inspect);
  if (verify_cmd->parsed()) return ctfs::cmd::RunVerify(verify);
  if (mount_cmd->parsed()) return ctfs::cmd::RunMount(mount);
  if (umount_cmd->parsed() || umount.via_revoke) return ctfs::cmd::RunUmount(umount);
  if (check_config_cmd->parsed()) return ctfs::cmd::RunCheckConfig(check_config);
  if (status_cmd->parsed()) return ctfs::cmd::RunStatus(status);
  return ctfs::cmd::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ctfs: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "ctfs: internal error\n");
  }
  return ctfs::cmd::kExitError;
}
