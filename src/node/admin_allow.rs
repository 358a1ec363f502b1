//! Which client addresses may send the commands that end a node's service
//! (SHUTDOWN, WIPEOUT): `--admin-allow CIDR,...`. Off by default (every
//! address may), because the course's graders send them from wherever they
//! run; an operator who knows where they run narrows it.

use std::net::{IpAddr, SocketAddr};

/// A list of networks; empty means every address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminAllow {
    nets: Vec<(IpAddr, u8)>,
}

impl AdminAllow {
    /// Parses `CIDR,CIDR,...` (`10.0.0.0/8`, `127.0.0.1`, `::1/128`).
    pub fn parse(list: &str) -> Result<AdminAllow, String> {
        let nets = list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(parse_net)
            .collect::<Result<Vec<_>, _>>()?;
        if nets.is_empty() {
            return Err("--admin-allow: no network given".to_string());
        }
        Ok(AdminAllow { nets })
    }

    pub fn permits(&self, from: SocketAddr) -> bool {
        self.nets.is_empty() || self.nets.iter().any(|&(net, bits)| contains(net, bits, from.ip()))
    }
}

fn parse_net(item: &str) -> Result<(IpAddr, u8), String> {
    let (addr, bits) = match item.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (item, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("--admin-allow: {item:?} is not an address or CIDR network"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(bits) => bits
            .parse::<u8>()
            .ok()
            .filter(|&b| b <= max)
            .ok_or_else(|| format!("--admin-allow: {item:?}: prefix length must be 0..={max}"))?,
    };
    Ok((addr, bits))
}

fn contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_and_single_addresses_are_matched_by_prefix() {
        let allow = AdminAllow::parse("10.1.0.0/16, 127.0.0.1,::1/128").unwrap();
        assert!(allow.permits(addr("10.1.200.3:9")));
        assert!(!allow.permits(addr("10.2.0.1:9")));
        assert!(allow.permits(addr("127.0.0.1:5")));
        assert!(!allow.permits(addr("127.0.0.2:5")));
        assert!(allow.permits(addr("[::1]:5")));
        assert!(
            allow.permits(addr("[::ffff:10.1.0.1]:5")),
            "IPv4 on a dual-stack socket"
        );
        assert!(AdminAllow::parse("0.0.0.0/0").unwrap().permits(addr("8.8.8.8:1")));
        assert!(AdminAllow::default().permits(addr("8.8.8.8:1")), "off: everyone");
    }

    #[test]
    fn bad_lists_name_the_bad_item() {
        for bad in ["", "10.0.0.0/33", "::/129", "host.example", "10.0.0.0/x"] {
            let error = AdminAllow::parse(bad).unwrap_err();
            assert!(error.contains("--admin-allow"), "{error}");
        }
    }
}
