import Glibc
import Testing
@testable import Tollgate
import TollgateIO

/// The configuration, certificate and users-file checks, on real files in a temporary folder with an injected clock.
@Suite struct DoctorCredentialsTests {
    @Test func configurationProblemsNameTheirFileAndLine() throws {
        let host = try FakeDoctorHost()
        let subject = doctorSubject("listen-plain = 127.0.0.1:8080\nburst = lots\n")
        let configuration = Doctor(subject: subject, host: host).configurationCheck()
        #expect(configuration.status == .fail)
        #expect(configuration.detail.contains(".conf:2: key \"burst\": expected an integer, got \"lots\""))
        #expect(Doctor(subject: doctorSubject(), host: host).configurationCheck().status == .ok)
    }

    @Test func weakHashesAreNamedByLineAndAMissingFileFails() throws {
        let host = try FakeDoctorHost()
        try host.write("users.htpasswd", "# admins\nalice:{PLAIN}secret\nbob:$2y$05$m/HOzOyowX4pXSiRV2SAD.FkOWzDRmppreIDUiq9whtiN4tBZ9nju\n")
        let path = host.root + "/users.htpasswd"
        let users = try #require(check("users file", in: Doctor(subject: doctorSubject(usersPath: path), host: host)
            .credentialChecks()))
        #expect(users.status == .warn)
        #expect(users.detail.contains("\(path):2: user \"alice\" uses {PLAIN} (the password in clear)"))
        #expect(users.fix?.contains("tollgate users passwd NAME") == true)
        #expect(users.detail.hasPrefix("\(path): 2 user(s), 1 weak hash(es), 0 unusable line(s)"))

        // A line the loader cannot use is named too.
        try host.write("users.htpasswd", "alice:{PLAIN}secret\nno colon here\n")
        let junk = try #require(check("users file", in: Doctor(subject: doctorSubject(usersPath: path), host: host)
            .credentialChecks()))
        #expect(junk.detail.hasPrefix("\(path): 1 user(s), 1 weak hash(es), 1 unusable line(s)"))
        #expect(junk.detail.contains("\(path):2: "))

        try host.write("users.htpasswd", "bob:$2y$05$m/HOzOyowX4pXSiRV2SAD.FkOWzDRmppreIDUiq9whtiN4tBZ9nju\n")
        let strong = Doctor(subject: doctorSubject(usersPath: path), host: host).credentialChecks()
        #expect(check("users file", in: strong)?.status == .ok)

        let missing = Doctor(subject: doctorSubject(usersPath: host.root + "/none"), host: host).credentialChecks()
        #expect(check("users file", in: missing)?.status == .fail)
    }

    @Test func aSelfSignedCertificateWarnsAndACASignedOneChains() throws {
        let host = try FakeDoctorHost()
        let dir = host.root
        try DevelopmentCertificate.generate(keyPath: dir + "/self-key.pem", certificatePath: dir + "/self.pem",
                                            commonName: "localhost", subjectAltNames: "DNS:localhost", days: 90)
        try DevelopmentCertificate.generate(keyPath: dir + "/ca-key.pem", certificatePath: dir + "/ca.pem",
                                            commonName: "Doctor Test CA", subjectAltNames: nil, isCA: true, days: 365)
        try DevelopmentCertificate.generate(keyPath: dir + "/leaf-key.pem", certificatePath: dir + "/leaf.pem",
                                            commonName: "example.test", subjectAltNames: "DNS:example.test", days: 20,
                                            caKeyPath: dir + "/ca-key.pem", caCertificatePath: dir + "/ca.pem")
        host.nowSeconds = Int64(time(nil))
        func subject(_ cert: String, _ key: String, ca: String? = nil) -> Doctor.Subject {
            var s = doctorSubject("listen = 127.0.0.1:8443\nmetrics-listen = off\ncert = \(cert)\nkey = \(key)\n")
            s.caFile = ca
            return s
        }
        let selfSigned = Doctor(subject: subject(dir + "/self.pem", dir + "/self-key.pem"), host: host).certificateChecks()
        #expect(check("certificate", in: selfSigned)?.status == .ok)
        #expect(check("certificate", in: selfSigned)?.detail.contains("days left") == true)
        #expect(check("certificate chain", in: selfSigned)?.status == .warn)

        let leaf = Doctor(subject: subject(dir + "/leaf.pem", dir + "/leaf-key.pem", ca: dir + "/ca.pem"), host: host)
            .certificateChecks()
        #expect(check("certificate chain", in: leaf)?.status == .ok)
        #expect(check("certificate chain", in: leaf)?.detail.contains("Doctor Test CA") == true)
        // 20 days left: renew soon.
        #expect(check("certificate", in: leaf)?.status == .warn)

        // Without the CA it chains nowhere: a cert.pem without its issuer.
        let orphan = Doctor(subject: subject(dir + "/leaf.pem", dir + "/leaf-key.pem", ca: dir + "/self.pem"), host: host)
            .certificateChecks()
        #expect(check("certificate chain", in: orphan)?.status == .fail)
        #expect(check("certificate chain", in: orphan)?.fix?.contains("fullchain.pem") == true)

        // A year later it has expired.
        host.nowSeconds += 365 * 86_400
        let expired = Doctor(subject: subject(dir + "/leaf.pem", dir + "/leaf-key.pem", ca: dir + "/ca.pem"), host: host)
            .certificateChecks()
        #expect(check("certificate", in: expired)?.status == .fail)
        #expect(check("certificate", in: expired)?.detail.contains("expired on") == true)

        // A key that is not the certificate's.
        let mismatched = Doctor(subject: subject(dir + "/leaf.pem", dir + "/self-key.pem"), host: host).certificateChecks()
        #expect(mismatched.map(\.status) == [.fail])
    }
}
