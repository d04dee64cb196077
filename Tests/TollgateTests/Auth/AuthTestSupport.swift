import Dispatch
import Foundation
import Synchronization
import Testing
@testable import Tollgate

/// A monotonic clock the test moves by hand.
final class TestClock: Sendable {
    private let nanos = Atomic<UInt64>(1_000_000_000)

    var now: UInt64 { nanos.load(ordering: .relaxed) }

    var function: @Sendable () -> UInt64 { { [self] in now } }

    func advance(seconds: Double) {
        nanos.add(UInt64(seconds * 1_000_000_000), ordering: .relaxed)
    }
}

/// Collects values delivered on other threads; `next` waits for one with a generous timeout (no sleeping).
final class Inbox<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    private let arrived = DispatchSemaphore(value: 0)

    func put(_ item: T) {
        items.withLock { $0.append(item) }
        arrived.signal()
    }

    /// The next value, in arrival order, or nil after `timeout` seconds.
    func next(timeout: Double = 20) -> T? {
        guard arrived.wait(timeout: .now() + timeout) == .success else { return nil }
        return items.withLock { $0.removeFirst() }
    }

    /// Waits for values until one satisfies `match`, or nil after `timeout` seconds overall.
    func first(timeout: Double = 20, where match: (T) -> Bool) -> T? {
        let deadline = DispatchTime.now() + timeout
        while arrived.wait(timeout: deadline) == .success {
            let item = items.withLock { $0.removeFirst() }
            if match(item) { return item }
        }
        return nil
    }
}

/// A password check that blocks until the test opens it, and reports each entry.
final class Gate: Sendable {
    let entered = Inbox<String>()
    private let open = DispatchSemaphore(value: 0)

    func release(_ count: Int = 1) {
        for _ in 0..<count { open.signal() }
    }

    /// A verifier that announces itself, waits for `release`, then really verifies.
    var verifier: @Sendable ([UInt8], String, HashFormat) -> Bool {
        { [self] password, hash, format in
            entered.put(String(decoding: password, as: UTF8.self))
            open.wait()
            return PasswordVerifier.verify(password: password, against: hash, format: format)
        }
    }
}

/// Known-good fixtures, made with apache2-utils' htpasswd, openssl passwd and libxcrypt.
enum Fixture {
    static let bcrypt5 = "$2y$05$eoFKIWeP.n2B4S3ZXO1bneVNAH1cx4h1DV9Plmqq7A82tK4b5nSve"  // "secret"
    static let apr1 = "$apr1$8LS.aY.q$cEzyRlZFqWlA4nTAVC8NK1"  // "pw"
    static let sha1 = "{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM="  // "pw"
    static let ssha = "{SSHA}jq947ia6f43DEEphfK2uy1g0KB4BAgMEc2FsdFg="  // "pw"
    static let sha256crypt = "$5$abcdefgh$ijtOJ//yvc/9bq1g0llFn9dB688BwBDRD90DlKKSKE1"  // "pw"
    static let sha512crypt = "$6$abcdefgh$KQeXafAQAaOoKTevphVU215RvJdgzyfASRasIOuh12hO8u0r1bGW92ZnTmC9IjsiQ8VPiTXBiZF49dFL1U4wX/"  // "pw"
    static let yescrypt = "$y$j9T$176P88uCM1xndvkd/dBdZ.$OsLm2P6cUALQqspEEDjv39s21Y8FnRTRqk0gIOVtc77"  // "pw"
    static let md5crypt = "$1$saltsalt$lAu4Yl1EiCfuGFoLFgSVa1"  // "md5 pw" (openssl passwd -1)
    static let descrypt = "/aVSbSV0CwEiY"  // "des-pw" (htpasswd -d)
}

/// Runs `check` and, when it is pending, waits for the completion.
func checkAndWait(_ auth: Authenticator, _ user: String, _ password: String, ip: String = "192.0.2.1") -> AuthOutcome? {
    let inbox = Inbox<AuthOutcome>()
    switch auth.check(Credentials(user: user, password: Array(password.utf8)), clientIP: ip,
                      completion: { inbox.put($0) }) {
    case .done(let outcome): return outcome
    case .pending: return inbox.next()
    }
}

/// A fresh temporary directory.
func makeTemporaryDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-auth-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// Runs htpasswd with `arguments`; its stdout, or nil when it is not installed.
func htpasswd(_ arguments: [String]) throws -> String? {
    try run("/usr/bin/htpasswd", arguments)
}

/// Runs `tool` with `arguments` and returns its standard output, or nil when the tool is not installed.
func run(_ tool: String, _ arguments: [String]) throws -> String? {
    guard FileManager.default.isExecutableFile(atPath: tool) else { return nil }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = Pipe()
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
