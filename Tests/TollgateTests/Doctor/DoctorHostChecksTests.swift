import Testing
@testable import Tollgate
import TollgateIO

/// The firewall and clock checks, from canned command outputs.
@Suite struct DoctorHostChecksTests {
    @Test func ufwActiveSaysWhatIsOpenAndFailsWhenOllamasPortIs() throws {
        let host = try FakeDoctorHost()
        host.commands["ufw status"] = ChildProcess.Output(status: 0, text: """
            Status: active

            To                         Action      From
            --                         ------      ----
            OpenSSH                    ALLOW       Anywhere
            443/tcp                    ALLOW       Anywhere
            OpenSSH (v6)               ALLOW       Anywhere (v6)

            """)
        let doctor = Doctor(subject: doctorSubject(), host: host)
        #expect(doctor.firewallChecks() == [DoctorCheck("firewall", .ok, "ufw active; open: OpenSSH, 443/tcp, OpenSSH (v6)")])
        // Tollgate on 0.0.0.0:8443 with no rule for it: clients cannot reach it.
        let public8443 = Doctor(subject: doctorSubject("listen = 0.0.0.0:8443\nmetrics-listen = off\n"), host: host)
        let closed = try #require(public8443.firewallChecks().first)
        #expect(closed.status == .warn)
        #expect(closed.detail.hasSuffix("no rule opens Tollgate's port 8443: clients cannot reach it"))
        #expect(closed.fix == "sudo ufw allow 8443/tcp")
        host.commands["ufw status"]?.text += "8443/tcp                   ALLOW       Anywhere\n"
        #expect(public8443.firewallChecks().first?.status == .ok)
        host.commands["ufw status"]?.text += "11434                      ALLOW       Anywhere\n"
        let open = try #require(doctor.firewallChecks().first)
        #expect(open.status == .fail)
        #expect(open.fix == "sudo ufw delete allow 11434")
    }

    @Test func ufwInactiveWarnsNotRootSkipsAbsentSkips() throws {
        let host = try FakeDoctorHost()
        let doctor = Doctor(subject: doctorSubject(), host: host)
        #expect(doctor.firewallChecks().map(\.status) == [.skip])
        #expect(doctor.firewallChecks().first?.detail == "no ufw or nft on this host")
        host.commands["ufw status"] = ChildProcess.Output(status: 1, text: "ERROR: You need to be root to run this script\n")
        #expect(doctor.firewallChecks().map(\.status) == [.skip])
        host.commands["ufw status"] = ChildProcess.Output(status: 0, text: "Status: inactive\n")
        let inactive = try #require(doctor.firewallChecks().first)
        #expect(inactive.status == .warn)
        #expect(inactive.fix?.contains("ufw enable") == true)
    }

    @Test func nftablesRulesAreReadWhenUfwIsAbsent() throws {
        let host = try FakeDoctorHost()
        host.commands["nft list ruleset"] = ChildProcess.Output(status: 0, text: """
            table inet filter {
                chain input {
                    type filter hook input priority filter; policy drop;
                    tcp dport 22 accept
                    tcp dport 443 accept
                }
            }

            """)
        let doctor = Doctor(subject: doctorSubject(), host: host)
        #expect(doctor.firewallChecks().first?.detail == "nftables ruleset; accepted: tcp dport 22 accept; tcp dport 443 accept")
        host.commands["nft list ruleset"]?.text = "table inet filter {\n chain input {\n  tcp dport 11434 accept\n }\n}\n"
        #expect(doctor.firewallChecks().first?.status == .fail)
        host.commands["nft list ruleset"] = ChildProcess.Output(status: 1, text: "Operation not permitted\n")
        #expect(doctor.firewallChecks().first?.status == .skip)
    }

    @Test func clockFromTimedatectlElseTheKernel() throws {
        let host = try FakeDoctorHost()
        let doctor = Doctor(subject: doctorSubject(), host: host)
        host.commands["timedatectl show -p NTPSynchronized --value"] = ChildProcess.Output(status: 0, text: "yes\n")
        #expect(doctor.clockCheck().status == .ok)
        host.commands["timedatectl show -p NTPSynchronized --value"] = ChildProcess.Output(status: 0, text: "no\n")
        #expect(doctor.clockCheck().status == .warn)
        #expect(doctor.clockCheck().fix?.hasPrefix("sudo timedatectl set-ntp true") == true)
        host.commands = [:]
        host.synchronized = true
        #expect(doctor.clockCheck().detail == "synchronized (the kernel's clock status)")
        host.synchronized = nil
        #expect(doctor.clockCheck().status == .skip)
    }
}
