//! IPv4 CIDR blocks, and finding a free block of a given size in a VPC for garrison's
//! security subnet (the reference takes a free /28).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    pub addr: u32,
    pub prefix: u8,
}

impl Ipv4Net {
    pub fn new(addr: u32, prefix: u8) -> Ipv4Net {
        let mask = Ipv4Net::mask_of(prefix);
        Ipv4Net { addr: addr & mask, prefix }
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 { 0 } else { u32::MAX << (32 - prefix as u32) }
    }

    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix as u32)
    }

    pub fn first(&self) -> u32 {
        self.addr
    }

    pub fn last(&self) -> u32 {
        (self.addr as u64 + self.size() - 1) as u32
    }

    pub fn overlaps(&self, o: &Ipv4Net) -> bool {
        self.first() <= o.last() && o.first() <= self.last()
    }

    pub fn contains(&self, o: &Ipv4Net) -> bool {
        self.first() <= o.first() && o.last() <= self.last()
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.addr.to_be_bytes();
        write!(f, "{}.{}.{}.{}/{}", a[0], a[1], a[2], a[3], self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;

    fn from_str(s: &str) -> Result<Ipv4Net, String> {
        let bad = || format!("not an IPv4 CIDR block: {s:?}");
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Ipv4Net::new(u32::from(ip), prefix))
    }
}

/// The highest block of length `prefix` inside `vpc` that overlaps none of `taken`
/// (garrison takes the top of the range, away from where customers usually allocate).
pub fn free_block(vpc: &Ipv4Net, taken: &[Ipv4Net], prefix: u8) -> Option<Ipv4Net> {
    if prefix < vpc.prefix || prefix > 28 {
        return None;
    }
    let step = 1u64 << (32 - prefix as u32);
    let count = vpc.size() / step;
    (0..count)
        .rev()
        .map(|i| Ipv4Net::new((vpc.first() as u64 + i * step) as u32, prefix))
        .find(|c| taken.iter().all(|t| !t.overlaps(c)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn finds_the_top_free_28() {
        let vpc = n("10.0.0.0/16");
        assert_eq!(free_block(&vpc, &[n("10.0.0.0/24"), n("10.0.1.0/24")], 28), Some(n("10.0.255.240/28")));
        assert_eq!(free_block(&vpc, &[n("10.0.255.240/28")], 28), Some(n("10.0.255.224/28")));
        assert_eq!(free_block(&n("10.0.0.0/28"), &[n("10.0.0.0/28")], 28), None);
        assert_eq!(free_block(&vpc, &[n("10.0.0.0/16")], 28), None);
        assert_eq!(n("10.0.3.7/24").to_string(), "10.0.3.0/24");
        assert!("10.0.0.0/33".parse::<Ipv4Net>().is_err() && "x/8".parse::<Ipv4Net>().is_err());
    }

    proptest! {
        #[test]
        fn a_found_block_is_inside_aligned_and_free(
            base in any::<u32>(), vprefix in 16u8..=24, taken in proptest::collection::vec((any::<u32>(), 20u8..=28), 0..40),
        ) {
            let vpc = Ipv4Net::new(base, vprefix);
            let taken: Vec<Ipv4Net> = taken.into_iter().map(|(a, p)| Ipv4Net::new(vpc.first() | (a & !Ipv4Net::mask_of(vprefix)), p.max(vprefix))).collect();
            match free_block(&vpc, &taken, 28) {
                Some(b) => {
                    prop_assert!(vpc.contains(&b));
                    prop_assert_eq!(b.addr % 16, 0);
                    prop_assert!(taken.iter().all(|t| !t.overlaps(&b)));
                }
                None => {
                    // Every /28 of the VPC is taken.
                    let blocks = vpc.size() / 16;
                    for i in 0..blocks {
                        let c = Ipv4Net::new(vpc.first() + (i * 16) as u32, 28);
                        prop_assert!(taken.iter().any(|t| t.overlaps(&c)));
                    }
                }
            }
        }
    }
}
