import COpenSSL
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one owner of an OpenSSL `X509*`, freed in `deinit`. Nothing outside this type sees the
/// raw pointer except through `withPointer`, and only for the duration of that call.
final class X509Certificate {
    private let pointer: OpaquePointer

    /// Takes ownership of one reference to `pointer` (from `SSL_get1_peer_certificate`,
    /// `PEM_read_bio_X509`, `X509_new`, …).
    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    /// Reads the first certificate in a PEM file.
    convenience init(pemFile path: String) throws {
        OpenSSLErrorQueue.clear()
        guard let bio = BIO_new_file(path, "r") else {
            throw TLSError.fromOpenSSL(.invalidConfiguration, "cannot open certificate \(path)")
        }
        defer { BIO_free(bio) }
        guard let x509 = PEM_read_bio_X509(bio, nil, nil, nil) else {
            throw TLSError.fromOpenSSL(.invalidConfiguration, "cannot read a PEM certificate from \(path)")
        }
        self.init(taking: x509)
    }

    deinit {
        X509_free(self.pointer)
    }

    /// Lends the raw pointer to `body`; it must not escape.
    func withPointer<Result>(_ body: (OpaquePointer) throws -> Result) rethrows -> Result {
        try body(self.pointer)
    }

    /// The certificate's names, fingerprint and expiry.
    var identity: PeerIdentity {
        var dnsNames: [String] = []
        var uris: [String] = []
        var ipAddresses: [String] = []
        self.forEachSubjectAlternativeName { name in
            switch name.type {
            case GEN_DNS:
                if let text = Self.ia5String(name.d.dNSName) { dnsNames.append(text) }
            case GEN_URI:
                if let text = Self.ia5String(name.d.uniformResourceIdentifier) { uris.append(text) }
            case GEN_IPADD:
                if let text = Self.ipAddressText(name.d.iPAddress) { ipAddresses.append(text) }
            default:
                break
            }
        }
        return PeerIdentity(
            commonName: self.commonName,
            dnsNames: dnsNames,
            uris: uris,
            ipAddresses: ipAddresses,
            sha256Fingerprint: self.sha256Fingerprint,
            notAfter: self.notAfter
        )
    }

    /// The subject's first CN entry, converted to UTF-8.
    var commonName: String? {
        guard let subject = X509_get_subject_name(self.pointer) else { return nil }
        let index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(subject, index),
            let data = X509_NAME_ENTRY_get_data(entry)
        else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>? = nil
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else { return nil }
        defer { switchyard_OPENSSL_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    /// SHA-256 over the DER encoding, as lowercase hex.
    var sha256Fingerprint: String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(self.pointer, EVP_sha256(), &digest, &length) == 1 else { return "" }
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(Int(length) * 2)
        for byte in digest.prefix(Int(length)) {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The end of the validity period; the distant past if the field cannot be read (so that
    /// nothing treats an unreadable certificate as long-lived).
    var notAfter: Date {
        guard let time = X509_get0_notAfter(self.pointer) else { return .distantPast }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return .distantPast }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    private func forEachSubjectAlternativeName(_ body: (GENERAL_NAME) -> Void) {
        guard let raw = X509_get_ext_d2i(self.pointer, NID_subject_alt_name, nil, nil) else { return }
        let names = OpaquePointer(raw)
        defer { GENERAL_NAMES_free(names) }
        for index in 0..<switchyard_sk_GENERAL_NAME_num(names) {
            if let name = switchyard_sk_GENERAL_NAME_value(names, index) {
                body(name.pointee)
            }
        }
    }

    private static func ia5String(_ string: UnsafeMutablePointer<ASN1_STRING>?) -> String? {
        guard let string, let bytes = ASN1_STRING_get0_data(string) else { return nil }
        let count = Int(ASN1_STRING_length(string))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    private static func ipAddressText(_ string: UnsafeMutablePointer<ASN1_STRING>?) -> String? {
        guard let string, let bytes = ASN1_STRING_get0_data(string) else { return nil }
        let count = Int(ASN1_STRING_length(string))
        let family: CInt
        switch count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, bytes, &text, socklen_t(text.count)) != nil else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
