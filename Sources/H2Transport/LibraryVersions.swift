import CNGHTTP2
import COpenSSL

/// Versions of the C libraries Switchyard runs on, as loaded at run time.
public enum LibraryVersions {
    /// nghttp2's version string, e.g. "1.52.0".
    public static var nghttp2: String {
        guard let info = nghttp2_version(0), let string = info.pointee.version_str else { return "unknown" }
        return String(cString: string)
    }

    /// OpenSSL's version string, e.g. "OpenSSL 3.0.19 27 Jan 2026".
    public static var openSSL: String {
        guard let text = OpenSSL_version(numericCast(OPENSSL_VERSION)) else { return "unknown" }
        return String(cString: text)
    }
}
