import ArgumentParser
import Tollgate

/// The settings `serve` and `check-config` share: one flag per row of `SettingDefinition.all`, named, explained and
/// shaped by its row (`CLISettingFlagsTests` fails naming any that differs). Every one is optional here: a value
/// given on the command line wins over TOLLGATE_* variables, which win over the config file, which wins over the
/// table's defaults.
///
/// Each property is named after its setting in camel case (`--max-body` is `maxBody`): that is how `givenFlags`
/// finds the setting a parsed value belongs to.
struct ServeOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp("Config file (key = value lines). Default: $TOLLGATE_CONFIG, else /etc/tollgate/tollgate.conf when it exists.", valueName: "path"))
    var config: String?

    @Option(setting: "listen") var listen: [String] = []
    @Option(setting: "listen-plain") var listenPlain: [String] = []
    @Option(setting: "listen-redirect") var listenRedirect: [String] = []
    @Option(setting: "cert") var cert: String?
    @Option(setting: "key") var key: String?
    @Option(setting: "acme-domain") var acmeDomain: [String] = []
    @Option(setting: "acme-email") var acmeEmail: String?
    @Option(setting: "acme-ca") var acmeCa: String?
    @Option(setting: "acme-ca-root") var acmeCaRoot: String?
    @Option(setting: "upstream") var upstream: [String] = []
    @Option(setting: "health-interval") var healthInterval: String?
    @Option(setting: "health-fails") var healthFails: String?
    @Option(setting: "users") var users: String?
    @Option(setting: "authorized-keys") var authorizedKeys: String?
    @Option(setting: "realm") var realm: String?
    @Option(setting: "auth-workers") var authWorkers: String?
    @Option(setting: "login-fail-limit") var loginFailLimit: String?
    @Option(setting: "login-fail-window") var loginFailWindow: String?
    @Option(setting: "admin") var admin: [String] = []
    @Option(setting: "public-path") var publicPath: [String] = []
    @Option(setting: "cors-origin") var corsOrigin: [String] = []
    @Option(setting: "rate") var rate: String?
    @Option(setting: "burst") var burst: String?
    @Option(setting: "rate-limit-keys") var rateLimitKeys: String?
    @Option(setting: "rate-limit-exempt") var rateLimitExempt: [String] = []
    @Flag(setting: "rate-limit-dry-run") var rateLimitDryRun = false
    @Flag(setting: "proxy-protocol") var proxyProtocol = false
    @Option(setting: "proxy-protocol-from") var proxyProtocolFrom: [String] = []
    @Option(setting: "model-allow") var modelAllow: [String] = []
    @Option(setting: "password-logins") var passwordLogins: String?
    @Option(setting: "cloud-models") var cloudModels: String?
    @Option(setting: "max-connections") var maxConnections: String?
    @Option(setting: "max-connections-per-client") var maxConnectionsPerClient: String?
    @Option(setting: "queue-per-user") var queuePerUser: String?
    @Option(setting: "trusted-proxy") var trustedProxy: [String] = []
    @Option(setting: "max-inflight-per-user") var maxInflightPerUser: String?
    @Option(setting: "max-inflight") var maxInflight: String?
    @Option(setting: "queue") var queue: String?
    @Option(setting: "queue-timeout") var queueTimeout: String?
    @Option(setting: "user-rate") var userRate: String?
    @Option(setting: "user-burst") var userBurst: String?
    @Option(setting: "policy") var policy: [String] = []
    @Option(setting: "redis") var redis: String?
    @Option(setting: "fleet-size") var fleetSize: String?
    @Option(setting: "redis-fallback") var redisFallback: String?
    @Option(setting: "redis-timeout") var redisTimeout: String?
    @Option(setting: "slot-lease") var slotLease: String?
    @Option(setting: "workers") var workers: String?
    @Option(setting: "log") var log: String?
    @Option(setting: "access-log") var accessLog: String?
    @Option(setting: "metrics-listen") var metricsListen: String?
    @Option(setting: "health-path") var healthPath: String?
    @Option(setting: "ready-path") var readyPath: String?
    @Option(setting: "tls-session-cache") var tlsSessionCache: String?
    @Option(setting: "hsts") var hsts: String?
    @Option(setting: "pid-file") var pidFile: String?
    @Option(setting: "state-dir") var stateDir: String?
    @Option(setting: "ledger") var ledger: String?
    @Option(setting: "usage-retention") var usageRetention: String?
    @Option(setting: "head-timeout") var headTimeout: String?
    @Option(setting: "keepalive-timeout") var keepaliveTimeout: String?
    @Option(setting: "body-timeout") var bodyTimeout: String?
    @Option(setting: "body-total-timeout") var bodyTotalTimeout: String?
    @Option(setting: "send-timeout") var sendTimeout: String?
    @Option(setting: "upstream-connect-timeout") var upstreamConnectTimeout: String?
    @Option(setting: "upstream-timeout") var upstreamTimeout: String?
    @Option(setting: "drain-timeout") var drainTimeout: String?
    @Option(setting: "max-body-inference") var maxBodyInference: String?
    @Option(setting: "max-body-buffered") var maxBodyBuffered: String?
    @Option(setting: "max-body") var maxBody: String?

    /// The flags actually given, by setting name: every setting property that was set, found by reflection.
    var givenFlags: [String: [String]] {
        var flags: [String: [String]] = [:]
        for child in Mirror(reflecting: self).children {
            guard let label = child.label, label.hasPrefix("_"), label != "_config" else { continue }
            let name = ServeOptions.settingName(property: label.dropFirst())
            switch child.value {
            case let option as Option<String?>:
                if let value = option.wrappedValue { flags[name] = [value] }
            case let option as Option<[String]>:
                if !option.wrappedValue.isEmpty { flags[name] = option.wrappedValue }
            case let flag as Flag<Bool>:
                if flag.wrappedValue { flags[name] = [] }
            default:
                continue
            }
        }
        return flags
    }

    /// `maxBodyInference` → `max-body-inference`.
    static func settingName(property: Substring) -> String {
        var name = ""
        for ch in property {
            if ch.isUppercase {
                name += "-" + ch.lowercased()
            } else {
                name.append(ch)
            }
        }
        return name
    }
}

extension Option {
    /// The flag of a scalar setting (`--name value`), with its help from the table.
    init<T: ExpressibleByArgument>(setting name: String) where Value == T? {
        self.init(name: .customLong(name), help: SettingHelp.of(name))
    }

    /// The flag of a list setting (`--name value`, repeatable), with its help from the table.
    init(wrappedValue: [String], setting name: String) where Value == [String] {
        self.init(wrappedValue: wrappedValue, name: .customLong(name), help: SettingHelp.of(name))
    }
}

extension Flag where Value == Bool {
    /// The flag of a boolean setting (`--name` for true), with its help from the table.
    init(wrappedValue: Bool, setting name: String) {
        self.init(wrappedValue: wrappedValue, name: .customLong(name), help: SettingHelp.of(name))
    }
}

/// Help text for a setting's flag, from the table (`SettingDefinition.flagHelp`).
enum SettingHelp {
    static func of(_ name: String) -> ArgumentHelp {
        guard let d = SettingDefinition.named(name) else { preconditionFailure("--\(name) is not in the settings table") }
        return ArgumentHelp(d.flagHelp, valueName: "value")
    }
}
