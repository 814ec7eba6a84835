// [cli] vouchctl as a kubectl user meets it, without servers: the output
// layer (tables sized to content, YAML that python3-yaml reads back as the
// same value, names), failure codes as short names, contexts and their
// precedence, every failure with a reason, the completion scripts, the man
// page and the old spellings kept as hidden aliases.
#include <google/protobuf/descriptor.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "core/failure_code.h"
#include "harness/ports.h"
#include "harness/process.h"
#include "harness/temp_dir.h"
#include "tenant/cli_common.h"
#include "tenant/output.h"
#include "vouch/v1/common.pb.h"

namespace vouch::tenant {
namespace {

using testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Spit(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

testing::RunResult Ctl(const std::vector<std::string>& args,
                       std::vector<std::pair<std::string, std::string>> env) {
  std::vector<std::string> argv = {VOUCHCTL_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  // No ambient settings of the machine running the tests.
  for (const char* name :
       {"VOUCH_SERVER", "VOUCH_REGISTRAR", "VOUCH_TLS_DIR", "VOUCH_CONTEXT"}) {
    bool given = false;
    for (const auto& [k, v] : env) given = given || k == name;
    if (!given) env.emplace_back(name, "");
  }
  env.emplace_back("VOUCH_OUTPUT", "table");
  testing::RunResult r =
      testing::RunCapture(argv, std::move(env), std::chrono::seconds(60));
  INFO(r.err);
  REQUIRE(r.status.exited);
  return r;
}

TEST_CASE("tables size each column to its widest cell", "[cli]") {
  const std::string id(64, 'a');
  Table t({{"AGENT_ID"}, {"STATE"}, Table::Wide("TENANT")});
  t.AddRow({id, "pass", "default"});
  t.AddRow({"b", "", "t2"});
  t.AddDetail("ima.file_not_in_policy /tmp/evil.sh");
  const std::vector<std::string> lines =
      absl::StrSplit(t.Render(false), '\n', absl::SkipEmpty());
  REQUIRE(lines.size() == 4);
  // STATE starts at the same column on every line: after the 64-character
  // id and three spaces; the empty cell prints as '-'.
  CHECK(lines[0] == "AGENT_ID" + std::string(64 - 8 + 3, ' ') + "STATE");
  CHECK(lines[1] == id + "   pass");
  CHECK(lines[2] == "b" + std::string(63 + 3, ' ') + "-");
  CHECK(lines[3] == "    ima.file_not_in_policy /tmp/evil.sh");
  // Wide columns only with -o wide.
  const std::string wide = t.Render(true);
  CHECK(absl::StrContains(wide, "STATE   TENANT\n"));
  CHECK(absl::StrContains(wide, id + "   pass    default\n"));
}

// A test name must not start with '-': CTest passes it to the binary, which
// would read it as an option (and run every test case of the binary).
TEST_CASE(
    "yaml output (-o yaml) reads back as the same value, -o name lists "
    "names",
    "[cli]") {
  nlohmann::json failure = {{"code", "ima.file_not_in_policy"},
                            {"path", "/tmp/a \"quoted\": #x\n\ttab"}};
  nlohmann::json first = {{"agent_id", "node-a"},
                          {"connected", true},
                          {"ima_next_entry", nullptr},
                          {"failures", nlohmann::json::array({failure})},
                          {"reset_count", 4294967295u},
                          {"ratio", 1e+20}};
  nlohmann::json second = {{"agent_id", "yes"},
                           {"failures", nlohmann::json::array()}};
  nlohmann::json nested = nlohmann::json::array(
      {nlohmann::json::array({1, 2}), nlohmann::json::array(),
       nlohmann::json{{"a", {{"b", "c"}}}}});
  nlohmann::json doc = {
      {"agents", nlohmann::json::array({first, second})},
      {"next_page_token", ""},
      {"null", "~"},
      {"on", nlohmann::json::object()},
      {"weird key: -", "- not a list"},
      {"unicode", "gr\xc3\xbc\xc3\x9f \xe2\x9c\x93 \xf0\x9f\x98\x80"},
      {"controls", std::string("\x7f\xc2\x85\xc2\x9f\x01", 6)},
      {"nested", nested},
      {"numbers", nlohmann::json::array({0, -1, 3.5, "12", "true", "null"})}};
  Output out;
  out.json = doc;
  out.names = {"agent/node-a", "agent/yes"};
  std::ostringstream yaml;
  PrintOutput(OutputFormat::kYaml, out, yaml);
  auto dir = TempDir::Create();
  REQUIRE(dir.ok());
  Spit(dir->Join("out.yaml"), yaml.str());
  testing::RunResult py = testing::RunCapture(
      {"python3", "-c",
       "import json, sys, yaml\n"
       "print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))",
       dir->Join("out.yaml")});
  INFO(yaml.str() << py.err);
  REQUIRE(py.status.Success());
  CHECK(nlohmann::json::parse(py.out) == doc);

  std::ostringstream json;
  PrintOutput(OutputFormat::kJson, out, json);
  CHECK(nlohmann::json::parse(json.str()) == doc);
  std::ostringstream names;
  PrintOutput(OutputFormat::kName, out, names);
  CHECK(names.str() == "agent/node-a\nagent/yes\n");
  // A scalar document, and invalid UTF-8 from a server does not throw.
  CHECK(ToYaml(nlohmann::json(7)) == "7\n");
  CHECK(ToYaml(nlohmann::json(std::string("\xff"))) == "\"\xef\xbf\xbd\"\n");
  CHECK(!ParseOutputFormat("xml").ok());
  CHECK(*ParseOutputFormat("wide") == OutputFormat::kWide);
}

TEST_CASE("lists fetch every page unless --limit caps them", "[cli]") {
  // A server of 10 items that sends at most 3 a page.
  auto serve = [](size_t total, std::vector<int>* asked) {
    return [total, asked](const std::string& token, int page_size,
                          std::string* next, size_t* fetched) {
      asked->push_back(page_size);
      const size_t from = token.empty() ? 0 : std::stoul(token);
      const size_t n =
          std::min<size_t>({3, static_cast<size_t>(page_size), total - from});
      *fetched = from + n;
      *next = from + n < total ? std::to_string(from + n) : "";
      return absl::OkStatus();
    };
  };
  std::vector<int> asked;
  REQUIRE(FetchPages(0, serve(10, &asked)).ok());
  CHECK(asked == std::vector<int>{1000, 1000, 1000, 1000});
  asked.clear();
  REQUIRE(FetchPages(5, serve(10, &asked)).ok());
  CHECK(asked == std::vector<int>{5, 2});
  // A server that promises a next page but sends nothing does not loop.
  int calls = 0;
  absl::Status looping = FetchPages(
      0, [&](const std::string&, int, std::string* next, size_t* fetched) {
        ++calls;
        *next = "again";
        *fetched = 0;
        return absl::OkStatus();
      });
  CHECK(looping.code() == absl::StatusCode::kDataLoss);
  CHECK(calls == 1);
}

TEST_CASE("failure codes print as short, unique names", "[cli]") {
  CHECK(core::FailureCodeName(v1::FAILURE_CODE_IMA_FILE_NOT_IN_POLICY) ==
        "ima.file_not_in_policy");
  CHECK(core::FailureCodeName(v1::FAILURE_CODE_NONCE_MISMATCH) ==
        "quote.nonce_mismatch");
  CHECK(core::FailureCodeName(9999) == "code_9999");
  const std::regex shape("[a-z]+\\.[a-z_]+");
  std::set<std::string> seen;
  const auto* codes = v1::FailureCode_descriptor();
  for (int i = 0; i < codes->value_count(); ++i) {
    const int code = codes->value(i)->number();
    const std::string name = core::FailureCodeName(code);
    INFO(codes->value(i)->name());
    CHECK(seen.insert(name).second);
    CHECK(core::ParseFailureCodeName(name) == code);
    if (code != 0) CHECK(std::regex_match(name, shape));
  }
}

TEST_CASE("every RPC failure prints a reason, UNIMPLEMENTED names servers",
          "[cli]") {
  std::ostringstream err;
  std::streambuf* old = std::cerr.rdbuf(err.rdbuf());
  const int empty =
      RpcError("registrar", grpc::Status(grpc::StatusCode::INTERNAL, ""),
               "127.0.0.1:1", Service::kRegistrar);
  const int wrong =
      RpcError("registrar", grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""),
               "127.0.0.1:2", Service::kRegistrar);
  std::cerr.rdbuf(old);
  CHECK(empty == 2);
  CHECK(wrong == 2);
  const std::vector<std::string> lines =
      absl::StrSplit(err.str(), '\n', absl::SkipEmpty());
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "vouchctl registrar: internal error");
  CHECK(absl::StrContains(lines[1], "127.0.0.1:2"));
  CHECK(absl::StrContains(lines[1], "is not a registrar"));
  CHECK(absl::StrContains(lines[1], "vouch.v1.Registrar"));
  CHECK(absl::StrContains(lines[1], "--registrar"));
}

TEST_CASE("contexts: set, use, list, and flag > env > context", "[cli]") {
  auto dir = TempDir::Create();
  REQUIRE(dir.ok());
  const std::string file = dir->Join("vouch/config");
  std::vector<std::pair<std::string, std::string>> env = {
      {"VOUCH_CONFIG", file}};
  CHECK(Ctl({"config", "current-context"}, env).status.code == 1);
  REQUIRE(Ctl({"config", "set-context", "lab", "--verifier", "127.0.0.1:7001",
               "--registrar", "127.0.0.1:7002", "--tls-dir", "/lab/tls"},
              env)
              .status.Success());
  REQUIRE(
      Ctl({"config", "set-context", "prod", "--verifier", "10.0.0.1:1"}, env)
          .status.Success());
  // The first context became current; prod is not.
  CHECK(Ctl({"config", "current-context"}, env).out == "lab\n");
  testing::RunResult list = Ctl({"config", "get-contexts", "-o", "json"}, env);
  REQUIRE(list.status.Success());
  nlohmann::json j = nlohmann::json::parse(list.out);
  CHECK(j["current_context"] == "lab");
  REQUIRE(j["contexts"].size() == 2);
  CHECK(j["contexts"][0]["registrar"] == "127.0.0.1:7002");
  CHECK(Ctl({"config", "get-contexts", "-o", "name"}, env).out ==
        "context/lab\ncontext/prod\n");
  testing::RunResult table = Ctl({"config", "get-contexts"}, env);
  CHECK(absl::StrContains(table.out, "*         lab "));

  auto resolved = [&](std::vector<std::string> args,
                      std::vector<std::pair<std::string, std::string>> e) {
    args.insert(args.end(), {"config", "view"});
    testing::RunResult r = Ctl(args, e);
    REQUIRE(r.status.Success());
    return r.out.substr(r.out.find("# verifier "));
  };
  CHECK(resolved({}, env) ==
        "# verifier 127.0.0.1:7001, registrar 127.0.0.1:7002, tls-dir "
        "/lab/tls\n");
  // The environment beats the context; a flag beats both.
  auto with_env = env;
  with_env.emplace_back("VOUCH_SERVER", "127.0.0.1:8001");
  CHECK(
      absl::StartsWith(resolved({}, with_env),
                       "# verifier 127.0.0.1:8001, registrar 127.0.0.1:7002"));
  CHECK(absl::StartsWith(resolved({"--server", "127.0.0.1:9001"}, with_env),
                         "# verifier 127.0.0.1:9001,"));
  // --context and use-context pick another one.
  CHECK(absl::StartsWith(resolved({"--context", "prod"}, env),
                         "# verifier 10.0.0.1:1, registrar , tls-dir \n"));
  REQUIRE(Ctl({"config", "use-context", "prod"}, env).status.Success());
  CHECK(Ctl({"config", "current-context"}, env).out == "prod\n");
  CHECK(Ctl({"config", "use-context", "nope"}, env).status.code == 1);
  testing::RunResult missing =
      Ctl({"--context", "nope", "agents", "list"}, env);
  CHECK(missing.status.code == 2);
  CHECK(absl::StrContains(missing.err, "context 'nope' is not in " + file));
  CHECK(Ctl({"config", "set-context", "bad name"}, env).status.code == 2);
  REQUIRE(Ctl({"config", "delete-context", "prod"}, env).status.Success());
  CHECK(Ctl({"config", "current-context"}, env).status.code == 1);

  // A malformed file: one line naming the file, line and key.
  Spit(file, "current-context = \"lab\"\n[contexts.lab]\nverifer = \"x\"\n");
  testing::RunResult bad = Ctl({"agents", "list"}, env);
  CHECK(bad.status.code == 2);
  CHECK(absl::StrContains(bad.err,
                          file + ":3: unknown key 'contexts.lab.verifer'"));
}

TEST_CASE("registrar commands reach the context's registrar by themselves",
          "[cli]") {
  auto dir = TempDir::Create();
  REQUIRE(dir.ok());
  // Nothing listens on these ports: the error names the address tried.
  auto verifier = testing::PickFreePort();
  auto registrar = testing::PickFreePort();
  REQUIRE(verifier.ok());
  REQUIRE(registrar.ok());
  const std::string v = "127.0.0.1:" + std::to_string(*verifier);
  const std::string r = "127.0.0.1:" + std::to_string(*registrar);
  std::vector<std::pair<std::string, std::string>> env = {
      {"VOUCH_CONFIG", dir->Join("config")}};
  // A real client TLS directory, so the connection itself is tried.
  REQUIRE(Ctl({"ca", "init", dir->Join("ca")}, {}).status.Success());
  REQUIRE(Ctl({"ca", "issue", dir->Join("ca"), "--client", "admin"}, {})
              .status.Success());
  REQUIRE(Ctl({"config", "set-context", "c", "--verifier", v, "--registrar", r,
               "--tls-dir", dir->Join("ca/clients/admin")},
              env)
              .status.Success());
  // Registrar commands go to the registrar, the others to the verifier;
  // nothing listens, and the reason names the address and the server kind.
  testing::RunResult get = Ctl({"registrar", "get", "node-a"}, env);
  CHECK(get.status.code == 2);
  CHECK(absl::StrContains(get.err, "is the registrar at " + r + " up"));
  testing::RunResult list = Ctl({"agents", "list"}, env);
  CHECK(list.status.code == 2);
  CHECK(absl::StrContains(list.err, "is the verifier at " + v + " up"));
  // No registrar address anywhere: registrar commands use --server, as
  // before contexts.
  REQUIRE(Ctl({"config", "set-context", "v", "--verifier", v, "--tls-dir",
               dir->Join("ca/clients/admin")},
              env)
              .status.Success());
  testing::RunResult fallback =
      Ctl({"--context", "v", "registrar", "list"}, env);
  CHECK(fallback.status.code == 2);
  CHECK(absl::StrContains(fallback.err, "is the registrar at " + v + " up"));
  // No address at all: the error says how to give one.
  testing::RunResult none =
      Ctl({"agents", "list"}, {{"VOUCH_CONFIG", dir->Join("none")}});
  CHECK(none.status.code == 2);
  CHECK(absl::StrContains(none.err, "no verifier address"));
}

TEST_CASE("completion scripts parse and complete from the command tree",
          "[cli]") {
  auto dir = TempDir::Create();
  REQUIRE(dir.ok());
  testing::RunResult bash = Ctl({"completion", "bash"}, {});
  REQUIRE(bash.status.Success());
  Spit(dir->Join("vouchctl.bash"), bash.out);
  CHECK(testing::RunCapture({"bash", "-n", dir->Join("vouchctl.bash")})
            .status.Success());
  // Completing `vouchctl ag` and `vouchctl agents list --l`.
  testing::RunResult done = testing::RunCapture(
      {"bash", "-c",
       "source \"$0\"; COMP_WORDS=(vouchctl ag); COMP_CWORD=1; _vouchctl; "
       "echo \"${COMPREPLY[*]}\"; COMP_WORDS=(vouchctl agents list --l); "
       "COMP_CWORD=3; _vouchctl; echo \"${COMPREPLY[*]}\"; "
       "COMP_WORDS=(vouchctl pol); COMP_CWORD=1; _vouchctl; "
       "echo \"${COMPREPLY[*]}\"",
       dir->Join("vouchctl.bash")});
  INFO(done.err);
  REQUIRE(done.status.Success());
  const std::vector<std::string> lines = absl::StrSplit(done.out, '\n');
  REQUIRE(lines.size() >= 3);
  CHECK(lines[0] == "agents");
  CHECK(absl::StrContains(lines[1], "--limit"));
  CHECK(absl::StrContains(lines[1], "--log-level"));  // A global flag.
  // Hidden aliases are not offered: `policy` completes to the new names.
  std::vector<std::string> pol = absl::StrSplit(lines[2], ' ');
  std::sort(pol.begin(), pol.end());
  CHECK(pol ==
        std::vector<std::string>{"policies", "policy-file", "policy-keys"});
  testing::RunResult zsh = Ctl({"completion", "zsh"}, {});
  REQUIRE(zsh.status.Success());
  CHECK(absl::StartsWith(zsh.out, "#compdef vouchctl\n"));
  Spit(dir->Join("_vouchctl"), zsh.out);
  CHECK(testing::RunCapture({"bash", "-n", dir->Join("_vouchctl")})
            .status.Success());
  CHECK(Ctl({"completion", "fish"}, {}).status.code == 2);
}

TEST_CASE("the man page lists every command and its flags", "[cli]") {
  // The build writes it the same way (cmake/VouchPackaging.cmake).
  auto dir = TempDir::Create();
  REQUIRE(dir.ok());
  REQUIRE(Ctl({"man", dir->path()}, {}).status.Success());
  const std::string page = Slurp(dir->Join("vouchctl.1"));
  CHECK(absl::StartsWith(page, ".TH VOUCHCTL 1 "));
  for (const char* want :
       {".SS vouchctl agents list", ".SS vouchctl config set\\-context",
        ".SS vouchctl policy\\-file sign", ".SS vouchctl describe agent",
        ".SS vouchctl registrar delete", "\\-\\-limit"}) {
    INFO(want);
    CHECK(absl::StrContains(page, want));
  }
  testing::RunResult groff = testing::RunCapture(
      {"groff", "-man", "-Tutf8", "-z", "-ww", dir->Join("vouchctl.1")});
  CHECK(groff.status.Success());
  CHECK(groff.err.empty());
}

TEST_CASE("old spellings work as hidden aliases, -o is never a file", "[cli]") {
  auto dir = TempDir::Create();
  REQUIRE(dir.ok());
  testing::RunResult help = Ctl({"--help"}, {});
  CHECK(absl::StrContains(help.out, "policy-file"));
  CHECK(absl::StrContains(help.out, "completion"));
  CHECK(!absl::StrContains(help.out, "policy-file, policy"));
  testing::RunResult agents_help = Ctl({"agents", "--help"}, {});
  CHECK(absl::StrContains(agents_help.out, "delete"));
  CHECK(!absl::StrContains(agents_help.out, "remove"));
  CHECK(!absl::StrContains(agents_help.out, "--page-size"));

  const std::string log =
      std::string(VOUCH_SOURCE_DIR) + "/tests/data/keylime/ima-log-sha256";
  // New spelling.
  testing::RunResult created = Ctl({"policy-file", "create", "--from-ima-log",
                                    log, "-f", dir->Join("new.json")},
                                   {});
  REQUIRE(created.status.Success());
  // Old spelling, -o FILE included.
  testing::RunResult old = Ctl(
      {"policy", "create", "--from-ima-log", log, "-o", dir->Join("old.json")},
      {});
  REQUIRE(old.status.Success());
  CHECK(absl::StrContains(old.err, "-o FILE is the old spelling of -f FILE"));
  CHECK(Slurp(dir->Join("old.json")) == Slurp(dir->Join("new.json")));
  // An output format after -o is not taken for a file name.
  testing::RunResult fmt =
      Ctl({"policy-file", "create", "--from-ima-log", log, "-o", "json"}, {});
  CHECK(fmt.status.code == 2);
  CHECK(absl::StrContains(fmt.err, "name it with -f FILE"));
  CHECK(Ctl({"policy-file", "create", "--from-ima-log", log}, {}).status.code ==
        2);
  // policy sign keeps working under the old spelling.
  testing::RunResult key =
      testing::RunCapture({"openssl", "ecparam", "-name", "prime256v1",
                           "-genkey", "-noout", "-out", dir->Join("key.pem")});
  REQUIRE(key.status.Success());
  testing::RunResult sign =
      Ctl({"policy", "sign", "--policy", dir->Join("new.json"), "--key",
           dir->Join("key.pem"), "-f", dir->Join("signed.json")},
          {});
  INFO(sign.err);
  CHECK(sign.status.Success());
  CHECK(absl::StrContains(Slurp(dir->Join("signed.json")), "payloadType"));
  // boot create-policy: -f, and the old -o.
  const std::string eventlog = std::string(VOUCH_SOURCE_DIR) +
                               "/tests/data/keylime/binary_bios_measurements";
  CHECK(Ctl({"boot", "create-policy", "--eventlog", eventlog, "-f",
             dir->Join("ref1.json")},
            {})
            .status.Success());
  CHECK(Ctl({"boot", "create-policy", "--eventlog", eventlog, "-o",
             dir->Join("ref2.json")},
            {})
            .status.Success());
  CHECK(Slurp(dir->Join("ref1.json")) == Slurp(dir->Join("ref2.json")));
  CHECK(!Slurp(dir->Join("ref1.json")).empty());
}

}  // namespace
}  // namespace vouch::tenant
