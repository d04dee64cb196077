import CTollgate
import Glibc

/// libxcrypt's `crypt_r`, `crypt_checksalt` and `crypt_gensalt_rn`: bcrypt (`$2y$`/`$2b$`/`$2a$`), SHA-crypt
/// (`$5$`/`$6$`), yescrypt (`$y$`), MD5-crypt (`$1$`), traditional DES and whatever else the system's libcrypt
/// verifies.
///
/// Blocking and CPU-bound (a cost-12 bcrypt is ~200 ms of one core): call only from worker threads, never from an
/// event loop. Thread-safe: each call uses its own heap-allocated `crypt_data` (~32 KiB) and wipes it afterwards,
/// together with its NUL-terminated copy of the password.
public enum PasswordCrypt {
    /// Hashes `password` with the algorithm and parameters named by `setting` (a full stored hash works: its hash
    /// part is ignored). Returns nil when libcrypt reports failure (a result starting with `*`), and for a password
    /// containing a NUL byte, which C would silently truncate.
    public static func crypt(password: [UInt8], setting: String) -> String? {
        if password.contains(0) { return nil }
        let size = MemoryLayout<crypt_data>.size
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        let rawData = UnsafeMutableRawPointer(data)
        // crypt_r requires a zeroed crypt_data on first use (its `initialized` field).
        memset(rawData, 0, size)
        let phrase = UnsafeMutablePointer<CChar>.allocate(capacity: password.count + 1)
        defer {
            explicit_bzero(rawData, size)
            data.deallocate()
            explicit_bzero(phrase, password.count + 1)
            phrase.deallocate()
        }
        for (i, byte) in password.enumerated() { phrase[i] = CChar(bitPattern: byte) }
        phrase[password.count] = 0
        guard let result = crypt_r(phrase, setting, data) else { return nil }
        // libxcrypt signals failure with "*0" or "*1" (never a valid hash); treat it as "no match".
        if result[0] == 0 || result[0] == CChar(UInt8(ascii: "*")) { return nil }
        return String(cString: result)
    }

    /// What libcrypt says of a stored hash's setting (its method, parameters and salt).
    public enum SettingCheck: Sendable, Equatable {
        /// A method libcrypt implements and recommends.
        case ok
        /// A method libcrypt implements but calls legacy (weak).
        case legacy
        /// Not a setting libcrypt can use.
        case invalid
    }

    /// `crypt_checksalt` on `hash`: whether libcrypt knows its method. It looks at the setting only, so a hash whose
    /// hash part is damaged still passes (and then fails every login, as a wrong password does).
    public static func checkSetting(_ hash: String) -> SettingCheck {
        switch crypt_checksalt(hash) {
        case CRYPT_SALT_OK: return .ok
        case CRYPT_SALT_METHOD_LEGACY, CRYPT_SALT_TOO_CHEAP: return .legacy
        default: return .invalid
        }
    }

    /// A new bcrypt hash with a random salt, in the `$2y$` form `htpasswd -B` writes. `cost` must be 4...31;
    /// returns nil otherwise or when libcrypt fails.
    public static func bcrypt(password: [UInt8], cost: Int) -> String? {
        guard (4...31).contains(cost) else { return nil }
        guard let setting = gensalt(prefix: "$2b$", count: UInt(cost)) else { return nil }
        // libxcrypt computes $2b$ and $2y$ identically; htpasswd and Apache write $2y$.
        return crypt(password: password, setting: "$2y$" + setting.dropFirst(4))
    }

    /// A new setting (prefix, parameters, random salt) from `crypt_gensalt_rn`, e.g. `prefix: "$2b$", count: 12`
    /// or `prefix: "$y$", count: 5`. Random bytes come from the OS. Nil when libcrypt rejects the arguments.
    public static func gensalt(prefix: String, count: UInt) -> String? {
        var output = [CChar](repeating: 0, count: 192)  // CRYPT_GENSALT_OUTPUT_SIZE
        let capacity = Int32(output.count)
        let made = output.withUnsafeMutableBufferPointer { buffer -> Bool in
            crypt_gensalt_rn(prefix, count, nil, 0, buffer.baseAddress, capacity) != nil
        }
        guard made, output[0] != 0, output[0] != CChar(UInt8(ascii: "*")) else { return nil }
        return output.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
