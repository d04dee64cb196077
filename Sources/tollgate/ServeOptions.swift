import ArgumentParser
import Tollgate

/// The settings `serve` and `check-config` share. Every one is optional here: a value given on the command line
/// wins over TOLLGATE_* variables, which win over the config file, which wins over the table's defaults
/// (`SettingDefinition.all`, the one source of truth for names, kinds and defaults).
struct ServeOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp("Config file (key = value lines). Default: $TOLLGATE_CONFIG, else /etc/tollgate/tollgate.conf when it exists.", valueName: "path"))
    var config: String?

    @Option(name: .customLong("listen"), help: SettingHelp.of("listen"))
    var listen: [String] = []

    @Option(name: .customLong("listen-plain"), help: SettingHelp.of("listen-plain"))
    var listenPlain: [String] = []

    @Option(name: .customLong("listen-redirect"), help: SettingHelp.of("listen-redirect"))
    var listenRedirect: [String] = []

    @Option(name: .customLong("cert"), help: SettingHelp.of("cert"))
    var cert: String?

    @Option(name: .customLong("key"), help: SettingHelp.of("key"))
    var key: String?

    @Option(name: .customLong("upstream"), help: SettingHelp.of("upstream"))
    var upstream: [String] = []

    @Option(name: .customLong("health-interval"), help: SettingHelp.of("health-interval"))
    var healthInterval: String?

    @Option(name: .customLong("health-fails"), help: SettingHelp.of("health-fails"))
    var healthFails: String?

    @Option(name: .customLong("users"), help: SettingHelp.of("users"))
    var users: String?

    @Option(name: .customLong("realm"), help: SettingHelp.of("realm"))
    var realm: String?

    @Option(name: .customLong("auth-workers"), help: SettingHelp.of("auth-workers"))
    var authWorkers: String?

    @Option(name: .customLong("login-fail-limit"), help: SettingHelp.of("login-fail-limit"))
    var loginFailLimit: String?

    @Option(name: .customLong("login-fail-window"), help: SettingHelp.of("login-fail-window"))
    var loginFailWindow: String?

    @Option(name: .customLong("admin"), help: SettingHelp.of("admin"))
    var admin: [String] = []

    @Option(name: .customLong("public-path"), help: SettingHelp.of("public-path"))
    var publicPath: [String] = []

    @Option(name: .customLong("cors-origin"), help: SettingHelp.of("cors-origin"))
    var corsOrigin: [String] = []

    @Option(name: .customLong("rate"), help: SettingHelp.of("rate"))
    var rate: String?

    @Option(name: .customLong("burst"), help: SettingHelp.of("burst"))
    var burst: String?

    @Option(name: .customLong("rate-limit-keys"), help: SettingHelp.of("rate-limit-keys"))
    var rateLimitKeys: String?

    @Option(name: .customLong("rate-limit-exempt"), help: SettingHelp.of("rate-limit-exempt"))
    var rateLimitExempt: [String] = []

    @Flag(name: .customLong("rate-limit-dry-run"), help: SettingHelp.of("rate-limit-dry-run"))
    var rateLimitDryRun = false

    @Flag(name: .customLong("proxy-protocol"), help: SettingHelp.of("proxy-protocol"))
    var proxyProtocol = false

    @Option(name: .customLong("proxy-protocol-from"), help: SettingHelp.of("proxy-protocol-from"))
    var proxyProtocolFrom: [String] = []

    @Option(name: .customLong("model-allow"), help: SettingHelp.of("model-allow"))
    var modelAllow: [String] = []

    @Option(name: .customLong("cloud-models"), help: SettingHelp.of("cloud-models"))
    var cloudModels: String?

    @Option(name: .customLong("max-connections"), help: SettingHelp.of("max-connections"))
    var maxConnections: String?

    @Option(name: .customLong("max-connections-per-client"), help: SettingHelp.of("max-connections-per-client"))
    var maxConnectionsPerClient: String?

    @Option(name: .customLong("queue-per-user"), help: SettingHelp.of("queue-per-user"))
    var queuePerUser: String?

    @Option(name: .customLong("trusted-proxy"), help: SettingHelp.of("trusted-proxy"))
    var trustedProxy: [String] = []

    @Option(name: .customLong("max-inflight-per-user"), help: SettingHelp.of("max-inflight-per-user"))
    var maxInflightPerUser: String?

    @Option(name: .customLong("max-inflight"), help: SettingHelp.of("max-inflight"))
    var maxInflight: String?

    @Option(name: .customLong("queue"), help: SettingHelp.of("queue"))
    var queue: String?

    @Option(name: .customLong("queue-timeout"), help: SettingHelp.of("queue-timeout"))
    var queueTimeout: String?

    @Option(name: .customLong("user-rate"), help: SettingHelp.of("user-rate"))
    var userRate: String?

    @Option(name: .customLong("user-burst"), help: SettingHelp.of("user-burst"))
    var userBurst: String?

    @Option(name: .customLong("redis"), help: SettingHelp.of("redis"))
    var redis: String?

    @Option(name: .customLong("fleet-size"), help: SettingHelp.of("fleet-size"))
    var fleetSize: String?

    @Option(name: .customLong("redis-fallback"), help: SettingHelp.of("redis-fallback"))
    var redisFallback: String?

    @Option(name: .customLong("redis-timeout"), help: SettingHelp.of("redis-timeout"))
    var redisTimeout: String?

    @Option(name: .customLong("slot-lease"), help: SettingHelp.of("slot-lease"))
    var slotLease: String?

    @Option(name: .customLong("workers"), help: SettingHelp.of("workers"))
    var workers: String?

    @Option(name: .customLong("log"), help: SettingHelp.of("log"))
    var log: String?

    @Option(name: .customLong("access-log"), help: SettingHelp.of("access-log"))
    var accessLog: String?

    @Option(name: .customLong("metrics-listen"), help: SettingHelp.of("metrics-listen"))
    var metricsListen: String?

    @Option(name: .customLong("health-path"), help: SettingHelp.of("health-path"))
    var healthPath: String?

    @Option(name: .customLong("ready-path"), help: SettingHelp.of("ready-path"))
    var readyPath: String?

    @Option(name: .customLong("hsts"), help: SettingHelp.of("hsts"))
    var hsts: String?

    @Option(name: .customLong("pid-file"), help: SettingHelp.of("pid-file"))
    var pidFile: String?

    @Option(name: .customLong("head-timeout"), help: SettingHelp.of("head-timeout"))
    var headTimeout: String?

    @Option(name: .customLong("keepalive-timeout"), help: SettingHelp.of("keepalive-timeout"))
    var keepaliveTimeout: String?

    @Option(name: .customLong("body-timeout"), help: SettingHelp.of("body-timeout"))
    var bodyTimeout: String?

    @Option(name: .customLong("body-total-timeout"), help: SettingHelp.of("body-total-timeout"))
    var bodyTotalTimeout: String?

    @Option(name: .customLong("send-timeout"), help: SettingHelp.of("send-timeout"))
    var sendTimeout: String?

    @Option(name: .customLong("upstream-connect-timeout"), help: SettingHelp.of("upstream-connect-timeout"))
    var upstreamConnectTimeout: String?

    @Option(name: .customLong("upstream-timeout"), help: SettingHelp.of("upstream-timeout"))
    var upstreamTimeout: String?

    @Option(name: .customLong("drain-timeout"), help: SettingHelp.of("drain-timeout"))
    var drainTimeout: String?

    @Option(name: .customLong("max-body-inference"), help: SettingHelp.of("max-body-inference"))
    var maxBodyInference: String?

    @Option(name: .customLong("max-body-buffered"), help: SettingHelp.of("max-body-buffered"))
    var maxBodyBuffered: String?

    @Option(name: .customLong("max-body"), help: SettingHelp.of("max-body"))
    var maxBody: String?

    /// The flags actually given, by setting name.
    var givenFlags: [String: [String]] {
        var flags: [String: [String]] = [:]
        if !listen.isEmpty { flags["listen"] = listen }
        if !listenPlain.isEmpty { flags["listen-plain"] = listenPlain }
        if !listenRedirect.isEmpty { flags["listen-redirect"] = listenRedirect }
        if let cert { flags["cert"] = [cert] }
        if let key { flags["key"] = [key] }
        if !upstream.isEmpty { flags["upstream"] = upstream }
        if let healthInterval { flags["health-interval"] = [healthInterval] }
        if let healthFails { flags["health-fails"] = [healthFails] }
        if let users { flags["users"] = [users] }
        if let realm { flags["realm"] = [realm] }
        if let authWorkers { flags["auth-workers"] = [authWorkers] }
        if let loginFailLimit { flags["login-fail-limit"] = [loginFailLimit] }
        if let loginFailWindow { flags["login-fail-window"] = [loginFailWindow] }
        if !admin.isEmpty { flags["admin"] = admin }
        if !publicPath.isEmpty { flags["public-path"] = publicPath }
        if !corsOrigin.isEmpty { flags["cors-origin"] = corsOrigin }
        if let rate { flags["rate"] = [rate] }
        if let burst { flags["burst"] = [burst] }
        if let rateLimitKeys { flags["rate-limit-keys"] = [rateLimitKeys] }
        if !rateLimitExempt.isEmpty { flags["rate-limit-exempt"] = rateLimitExempt }
        if rateLimitDryRun { flags["rate-limit-dry-run"] = [] }
        if proxyProtocol { flags["proxy-protocol"] = [] }
        if !proxyProtocolFrom.isEmpty { flags["proxy-protocol-from"] = proxyProtocolFrom }
        if !modelAllow.isEmpty { flags["model-allow"] = modelAllow }
        if let cloudModels { flags["cloud-models"] = [cloudModels] }
        if let queuePerUser { flags["queue-per-user"] = [queuePerUser] }
        if let maxConnections { flags["max-connections"] = [maxConnections] }
        if let maxConnectionsPerClient { flags["max-connections-per-client"] = [maxConnectionsPerClient] }
        if !trustedProxy.isEmpty { flags["trusted-proxy"] = trustedProxy }
        if let maxInflightPerUser { flags["max-inflight-per-user"] = [maxInflightPerUser] }
        if let maxInflight { flags["max-inflight"] = [maxInflight] }
        if let queue { flags["queue"] = [queue] }
        if let queueTimeout { flags["queue-timeout"] = [queueTimeout] }
        if let userRate { flags["user-rate"] = [userRate] }
        if let userBurst { flags["user-burst"] = [userBurst] }
        if let redis { flags["redis"] = [redis] }
        if let fleetSize { flags["fleet-size"] = [fleetSize] }
        if let redisFallback { flags["redis-fallback"] = [redisFallback] }
        if let redisTimeout { flags["redis-timeout"] = [redisTimeout] }
        if let slotLease { flags["slot-lease"] = [slotLease] }
        if let workers { flags["workers"] = [workers] }
        if let log { flags["log"] = [log] }
        if let accessLog { flags["access-log"] = [accessLog] }
        if let metricsListen { flags["metrics-listen"] = [metricsListen] }
        if let healthPath { flags["health-path"] = [healthPath] }
        if let readyPath { flags["ready-path"] = [readyPath] }
        if let hsts { flags["hsts"] = [hsts] }
        if let pidFile { flags["pid-file"] = [pidFile] }
        if let headTimeout { flags["head-timeout"] = [headTimeout] }
        if let keepaliveTimeout { flags["keepalive-timeout"] = [keepaliveTimeout] }
        if let bodyTimeout { flags["body-timeout"] = [bodyTimeout] }
        if let bodyTotalTimeout { flags["body-total-timeout"] = [bodyTotalTimeout] }
        if let sendTimeout { flags["send-timeout"] = [sendTimeout] }
        if let upstreamConnectTimeout { flags["upstream-connect-timeout"] = [upstreamConnectTimeout] }
        if let upstreamTimeout { flags["upstream-timeout"] = [upstreamTimeout] }
        if let drainTimeout { flags["drain-timeout"] = [drainTimeout] }
        if let maxBodyInference { flags["max-body-inference"] = [maxBodyInference] }
        if let maxBody { flags["max-body"] = [maxBody] }
        if let maxBodyBuffered { flags["max-body-buffered"] = [maxBodyBuffered] }
        return flags
    }
}

/// Help text for a setting, from the table, with its default.
enum SettingHelp {
    static func of(_ name: String) -> ArgumentHelp {
        guard let d = SettingDefinition.named(name) else { return ArgumentHelp("") }
        let suffix = d.defaultText.map { " (default: \($0))" } ?? ""
        return ArgumentHelp(d.help + suffix, valueName: "value")
    }
}
