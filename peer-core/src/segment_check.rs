//! Completeness checks of segment files: whole MPEG-TS packets, fMP4 boxes that add up. Pure
//! functions on bytes, used by the seeder to skip files that are still being written.

/// MPEG-TS: whole 188-byte packets, each starting with the sync byte 0x47.
pub fn check_mpeg_ts(data: &[u8]) -> Result<(), String> {
    const PACKET: usize = 188;
    if data.is_empty() {
        return Err("empty".into());
    }
    if data.len() % PACKET != 0 {
        return Err(format!(
            "MPEG-TS of {} bytes is not whole 188-byte packets (half-written?)",
            data.len()
        ));
    }
    if let Some(i) = data.chunks(PACKET).position(|p| p[0] != 0x47) {
        return Err(format!("MPEG-TS packet {i} has no sync byte"));
    }
    Ok(())
}

/// ISO BMFF (fMP4): top-level boxes whose sizes add up exactly to the data.
pub fn check_mp4_boxes(data: &[u8]) -> Result<(), String> {
    if data.is_empty() {
        return Err("empty".into());
    }
    let mut at = 0usize;
    while at < data.len() {
        let head = data
            .get(at..at + 8)
            .ok_or_else(|| format!("MP4 box header cut at byte {at} (half-written?)"))?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let size = match size32 {
            0 => (data.len() - at) as u64,
            1 => {
                let large = data
                    .get(at + 8..at + 16)
                    .ok_or_else(|| format!("MP4 box header cut at byte {at}"))?;
                let mut b = [0u8; 8];
                b.copy_from_slice(large);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        if size < 8 {
            return Err(format!("MP4 box at byte {at} has size {size}"));
        }
        let end = (at as u64).saturating_add(size);
        if end > data.len() as u64 {
            return Err(format!(
                "MP4 box at byte {at} needs {size} bytes, {} left (half-written?)",
                data.len() - at
            ));
        }
        at = end as usize;
    }
    Ok(())
}
