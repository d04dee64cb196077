import ArgumentParser
import Glibc
import Tollgate
import TollgateIO

@main
struct TollgateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate",
        abstract: "An authenticating, rate-limiting HTTPS reverse proxy for Ollama.",
        version: BuildInfo.line,
        subcommands: [Serve.self, CheckConfig.self, Reload.self, Users.self, Keys.self, Usage.self, DoctorCommand.self],
        defaultSubcommand: Serve.self
    )
}
