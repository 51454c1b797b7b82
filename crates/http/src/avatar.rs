//! `GET /avatars/u/{id}`: the image every account's `avatar_url` points at. Berth keeps no
//! pictures; it draws an identicon from the account id as GitHub does for accounts without
//! one — a 5×5 grid mirrored left to right, cells and colour from a hash of the id — as SVG.
//! Any id answers (an image says nothing about whether the account exists), and the answer
//! never changes, so clients may cache it.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Side of one cell, and the margin around the grid, in SVG units.
const CELL: usize = 70;
const MARGIN: usize = 35;

/// The identicon of `id`; 404 for what is not an account id.
pub async fn identicon(Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400, immutable"),
        ],
        draw(id),
    )
        .into_response()
}

/// The SVG for `id`: pure, the same id always draws the same picture.
pub fn draw(id: u64) -> String {
    let hash = Sha256::digest(id.to_be_bytes());
    // Hue from two bytes, a saturated mid-light colour on a light grey ground.
    let hue = u16::from_be_bytes([hash[0], hash[1]]) % 360;
    let side = CELL * 5 + MARGIN * 2;
    let mut cells = String::new();
    for row in 0..5 {
        for column in 0..3 {
            // One bit per cell of the left three columns; the right two mirror them.
            let bit = row * 3 + column;
            if hash[2 + bit / 8] >> (bit % 8) & 1 == 0 {
                continue;
            }
            let mirrored = 4 - column;
            let xs = if mirrored == column {
                vec![column]
            } else {
                vec![column, mirrored]
            };
            for x in xs {
                cells.push_str(&format!(
                    "<rect x=\"{}\" y=\"{}\" width=\"{CELL}\" height=\"{CELL}\"/>",
                    MARGIN + x * CELL,
                    MARGIN + row * CELL
                ));
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{side}\" height=\"{side}\" \
         viewBox=\"0 0 {side} {side}\" role=\"img\" aria-label=\"identicon\">\
         <rect width=\"{side}\" height=\"{side}\" fill=\"#f0f0f0\"/>\
         <g fill=\"hsl({hue}, 55%, 55%)\">{cells}</g></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::draw;

    #[test]
    fn the_same_id_draws_the_same_picture_and_others_differ() {
        assert_eq!(draw(7), draw(7));
        let pictures: std::collections::HashSet<String> = (1..50).map(draw).collect();
        assert!(pictures.len() > 45, "{} distinct of 49", pictures.len());
    }

    #[test]
    fn the_picture_is_mirrored() {
        let svg = draw(12345);
        for row in 0..5 {
            let y = format!("y=\"{}\"", 35 + row * 70);
            let xs: Vec<usize> = svg
                .match_indices(&y)
                .map(|(at, _)| {
                    let before = &svg[..at];
                    let x = before.rsplit("x=\"").next().unwrap();
                    x.split('"').next().unwrap().parse().unwrap()
                })
                .collect();
            for x in &xs {
                assert!(xs.contains(&(35 * 2 + 70 * 4 - x)), "row {row}: {xs:?}");
            }
        }
    }
}
