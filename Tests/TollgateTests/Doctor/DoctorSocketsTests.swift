import Testing
@testable import Tollgate
import TollgateIO

/// What doctor reads from the host's sockets: Ollama listening beyond loopback (the loud failure), and whether each
/// listener is free, held by a running Tollgate, or taken by something else. All from a fake /proc.
@Suite struct DoctorSocketsTests {
    @Test func procNetTCPListsListeningSocketsWithTheirAddressesAndInodes() throws {
        let v4 = ListeningSocket.parse(Array((tcpHeader + tcpLine("0100007F:2CAA", inode: 11)
                                             + tcpLine("00000000:01BB", inode: 12)
                                             + tcpLine("0100007F:9C40", state: "01", inode: 13)).utf8))
        #expect(v4.map(\.address.description) == ["127.0.0.1:11434", "0.0.0.0:443"])
        #expect(v4.map(\.inode) == [11, 12])
        let v6 = ListeningSocket.parse(Array((tcpHeader + tcpLine("00000000000000000000000001000000:2CAA", inode: 21)
                                             + tcpLine("00000000000000000000000000000000:2CAA", inode: 22)).utf8))
        #expect(v6.map(\.address.description) == ["[::1]:11434", "[::]:11434"])
    }

    @Test func ollamaOnAllAddressesIsALoudFailureWithTheSystemdFix() throws {
        let host = try FakeDoctorHost()
        try host.write("proc/net/tcp", tcpHeader + tcpLine("00000000:2CAA", inode: 500))
        try host.process(812, "ollama", holding: 500)
        let checks = Doctor(subject: doctorSubject(), host: host).run()
        let exposure = try #require(check("ollama exposure", in: checks))
        #expect(exposure.status == .fail)
        #expect(exposure.detail.contains("OLLAMA IS OPEN TO THE NETWORK"))
        #expect(exposure.detail.contains("0.0.0.0:11434 (ollama, pid 812)"))
        #expect(exposure.fix?.contains("Environment=\"OLLAMA_HOST=127.0.0.1:11434\"") == true)
        #expect(exposure.fix?.contains("systemctl edit ollama") == true)
        #expect(DoctorReport.exitStatus(checks) == 1)
        #expect(DoctorReport.text(checks).contains("✗ ollama exposure: OLLAMA IS OPEN"))
    }

    @Test func ollamaOnIPv6WildcardOrAPublicAddressFailsToo() throws {
        let host = try FakeDoctorHost()
        try host.write("proc/net/tcp6", tcpHeader + tcpLine("00000000000000000000000000000000:2CAA", inode: 7))
        #expect(Doctor(subject: doctorSubject(), host: host).exposureCheck(
            Doctor(subject: doctorSubject(), host: host).listeningSockets()).status == .fail)
        // A droplet's public address (203.0.113.5) on an upstream's own port.
        let other = try FakeDoctorHost()
        try other.write("proc/net/tcp", tcpHeader + tcpLine("057100CB:2CAB", inode: 8))
        let subject = doctorSubject("listen-plain = 127.0.0.1:8080\nmetrics-listen = off\nupstream = http://127.0.0.1:11435\n")
        let doctor = Doctor(subject: subject, host: other)
        let exposure = doctor.exposureCheck(doctor.listeningSockets())
        #expect(exposure.status == .fail)
        #expect(exposure.detail.contains("203.0.113.5:11435"))
        #expect(exposure.fix?.contains("OLLAMA_HOST=127.0.0.1:11435") == true)
    }

    @Test func ollamaOnLoopbackOnlyPasses() throws {
        let host = try FakeDoctorHost()
        try host.write("proc/net/tcp", tcpHeader + tcpLine("0100007F:2CAA", inode: 5))
        try host.write("proc/net/tcp6", tcpHeader + tcpLine("00000000000000000000000001000000:2CAA", inode: 6))
        let doctor = Doctor(subject: doctorSubject(), host: host)
        let exposure = doctor.exposureCheck(doctor.listeningSockets())
        #expect(exposure.status == .ok)
        #expect(exposure.detail == "Ollama listens on loopback only (127.0.0.1:11434, [::1]:11434)")
    }

    @Test func aListenerIsFreeHeldByTollgateOrTakenBySomethingElse() throws {
        let host = try FakeDoctorHost()
        // 8080 held by a running tollgate, 8443 on 0.0.0.0 by nginx, 9090 free.
        try host.write("proc/net/tcp", tcpHeader + tcpLine("0100007F:1F90", inode: 31) + tcpLine("00000000:20FB", inode: 32))
        try host.process(100, "tollgate", holding: 31)
        try host.process(200, "nginx", holding: 32)
        let subject = doctorSubject("""
            listen-plain = 127.0.0.1:8080
            listen = 127.0.0.1:8443
            metrics-listen = 127.0.0.1:9090

            """)
        let doctor = Doctor(subject: subject, host: host)
        let checks = doctor.listenerChecks(doctor.listeningSockets())
        #expect(check("listen-plain 127.0.0.1:8080", in: checks)?.status == .ok)
        #expect(check("listen-plain 127.0.0.1:8080", in: checks)?.detail == "held by tollgate (pid 100): running")
        let nginx = try #require(check("listen 127.0.0.1:8443", in: checks))
        #expect(nginx.status == .fail)
        #expect(nginx.detail == "in use by nginx (pid 200)")
        #expect(nginx.fix?.contains("systemctl disable --now nginx") == true)
        #expect(check("metrics-listen 127.0.0.1:9090", in: checks)?.status == .ok)
        #expect(check("metrics-listen 127.0.0.1:9090", in: checks)?.detail == "free")
    }

    @Test func aTollgateOtherThanThePidFilesWarns() throws {
        let host = try FakeDoctorHost()
        try host.write("proc/net/tcp", tcpHeader + tcpLine("0100007F:1F90", inode: 51))
        try host.process(300, "tollgate", holding: 51)
        try host.write("tollgate.pid", "300\n")
        let lines = "listen-plain = 127.0.0.1:8080\nmetrics-listen = off\npid-file = \(host.root)/tollgate.pid\n"
        let doctor = Doctor(subject: doctorSubject(lines), host: host)
        #expect(doctor.listenerChecks(doctor.listeningSockets()).first?.status == .ok)
        try host.write("tollgate.pid", "299\n")
        let stale = try #require(doctor.listenerChecks(doctor.listeningSockets()).first)
        #expect(stale.status == .warn)
        #expect(stale.detail == "held by another tollgate (pid 300), not the one pid-file names (pid 299)")
    }

    @Test func aListenerTakenByAnUnseenProcessWarnsANonRootUser() throws {
        let host = try FakeDoctorHost()
        host.uid = 1000
        try host.write("proc/net/tcp", tcpHeader + tcpLine("00000000:1F90", inode: 41))
        let doctor = Doctor(subject: doctorSubject(), host: host)
        let listener = try #require(doctor.listenerChecks(doctor.listeningSockets()).first)
        #expect(listener.status == .warn)
        #expect(listener.fix == "run tollgate doctor as root to name it")
    }

    @Test func withoutProcfsTheSocketChecksAreSkipped() throws {
        let host = try FakeDoctorHost()
        let doctor = Doctor(subject: doctorSubject(), host: host)
        #expect(doctor.listeningSockets() == nil)
        #expect(doctor.exposureCheck(nil).status == .skip)
        #expect(doctor.listenerChecks(nil).map(\.status) == [.skip])
    }
}
