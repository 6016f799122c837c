//! Image folders (`--features images`): pictures of every kind in class folders, made here, read,
//! transformed and batched as a user's crate would.

use candle_core::Tensor;
use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use minibatch::data::images::{
    flip, random_resized_crop, resize_centre_crop, ImageFolder, Picture, PictureCollate, CROP_RATIO, CROP_SCALE,
};
use minibatch::{Collate, DataLoader, Dataset, Rng};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("minibatch-images-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A picture whose pixel (x, y) is (x, y, shade) (mod 256).
fn pattern(w: u32, h: u32, shade: u8) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, shade]))
}

/// `dir/train` and `dir/valid`, each with classes `ant`, `bee` and `cat` of pictures of every
/// kind and size; `dir/train/bee` also holds a broken file and a text file.
fn folder(dir: &Path) {
    for (split, n) in [("train", 4u32), ("valid", 2)] {
        for (c, class) in ["cat", "ant", "bee"].iter().enumerate() {
            let d = dir.join(split).join(class);
            std::fs::create_dir_all(d.join("more")).unwrap();
            for i in 0..n {
                let (w, h) = (20 + 7 * i, 16 + 5 * c as u32);
                let shade = (40 * c) as u8;
                match i % 4 {
                    0 => pattern(w, h, shade).save(d.join(format!("{i}.png"))).unwrap(),
                    1 => pattern(w, h, shade).save(d.join(format!("{i}.JPG"))).unwrap(),
                    2 => {
                        GrayImage::from_fn(w, h, |x, _| Luma([x as u8])).save(d.join(format!("more/{i}.png"))).unwrap()
                    }
                    _ => {
                        let rgba = RgbaImage::from_fn(w, h, |x, y| Rgba([x as u8, y as u8, shade, 128]));
                        rgba.save(d.join(format!("{i}.png"))).unwrap();
                        let deep: ImageBuffer<Rgb<u16>, Vec<u16>> =
                            ImageBuffer::from_fn(w, h, |x, y| Rgb([x as u16 * 257, y as u16 * 257, 0]));
                        deep.save(d.join(format!("{i}-16bit.png"))).unwrap();
                    }
                }
            }
        }
    }
    std::fs::write(dir.join("train/bee/broken.png"), b"not a picture").unwrap();
    std::fs::write(dir.join("train/bee/notes.txt"), b"not read").unwrap();
}

#[test]
fn a_folder_is_read_with_its_vocabulary_and_every_kind_of_picture() {
    let d = tmp("read");
    folder(&d);
    let (train, valid) = ImageFolder::split(&d).unwrap();
    assert_eq!(train.classes(), ["ant", "bee", "cat"], "sorted by name");
    assert_eq!((train.len(), valid.len()), (15, 6), "4 pictures and a 16-bit one a class; the broken one left out");
    assert_eq!(train.skipped().len(), 1);
    assert!(train.skipped()[0].0.ends_with("bee/broken.png"));
    let labels: Vec<u32> = train.items().iter().map(|(_, l)| *l).collect();
    assert_eq!(labels, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    for i in 0..train.len() {
        let (Picture(img), _) = train.get(i).unwrap();
        assert!(img.width() >= 20 && img.height() >= 16);
    }
    // A grey picture becomes RGB with equal channels; the PNG's values are exact.
    let grey = train.items().iter().position(|(p, _)| p.ends_with("ant/more/2.png")).unwrap();
    let (Picture(img), _) = train.get(grey).unwrap();
    assert_eq!(img.get_pixel(5, 3).0, [5, 5, 5]);
    let exact = train.items().iter().position(|(p, _)| p.ends_with("cat/0.png")).unwrap();
    assert_eq!(train.get(exact).unwrap().0 .0.get_pixel(7, 2).0, [7, 2, 0]);
    // A validation class the training set lacks is an error naming the folder.
    std::fs::create_dir_all(d.join("valid/dog")).unwrap();
    let err = ImageFolder::split(&d).unwrap_err().to_string();
    assert!(err.contains("dog"), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn transforms_crop_flip_and_normalise_exactly() {
    let mut rng = Rng::new(0);
    let img = pattern(30, 20, 9);
    // The short side already at the size: the centre crop alone, pixel for pixel.
    let (Picture(c), _) = resize_centre_crop(20)((Picture(img.clone()), 0), &mut rng).unwrap();
    assert_eq!(c.dimensions(), (20, 20));
    assert_eq!(c.get_pixel(0, 0).0, [5, 0, 9]);
    assert_eq!(c.get_pixel(19, 19).0, [24, 19, 9]);
    // Flipped with probability 1: the mirror image; twice, the picture itself.
    let (Picture(f), _) = flip(1.0)((Picture(img.clone()), 0), &mut rng).unwrap();
    assert_eq!(f.get_pixel(0, 3).0, [29, 3, 9]);
    let (Picture(back), _) = flip(1.0)((Picture(f), 0), &mut rng).unwrap();
    assert_eq!(back, img);
    // A random resized crop is always the size asked.
    for _ in 0..50 {
        let (Picture(r), _) =
            random_resized_crop(8, CROP_SCALE, CROP_RATIO)((Picture(img.clone()), 0), &mut rng).unwrap();
        assert_eq!(r.dimensions(), (8, 8));
    }
    // The collate scales to [0, 1] and normalises each channel.
    let collate = PictureCollate { mean: [0.5, 0.0, 0.0], std: [0.5, 1.0, 2.0] };
    let one = RgbImage::from_pixel(2, 1, Rgb([255, 51, 102]));
    let (x, y) = collate.collate(vec![(Picture(one), 2)]).unwrap();
    assert_eq!(x.dims(), &[1, 3, 1, 2]);
    assert_eq!(x.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [1.0, 1.0, 0.2, 0.2, 0.2, 0.2]);
    assert_eq!(y.to_vec1::<u32>().unwrap(), [2]);
}

fn batches(data: ImageFolder, workers: usize) -> Vec<(Vec<f32>, Vec<u32>)> {
    let crop = random_resized_crop(12, CROP_SCALE, CROP_RATIO);
    let flip = flip(0.5);
    let mut b = DataLoader::builder_with_collate(data, PictureCollate::default())
        .batch_size(4)
        .shuffle(3)
        .item_transform(move |item, rng| flip(crop(item, rng)?, rng));
    if workers > 0 {
        b = b.num_workers(workers);
    }
    let dl = b.build().unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    (0..2u64)
        .flat_map(|epoch| dl.iter_epoch(epoch).map(|b| b.unwrap()).collect::<Vec<_>>())
        .map(|(x, y)| (flat(&x), y.to_vec1::<u32>().unwrap()))
        .collect()
}

#[test]
fn augmentation_is_the_same_whatever_the_workers_and_differs_between_epochs() {
    let d = tmp("augment");
    folder(&d);
    let (train, _) = ImageFolder::split(&d).unwrap();
    let alone = batches(train.clone(), 0);
    assert_eq!(alone.len(), 8, "4 batches an epoch, 2 epochs");
    assert!(alone == batches(train.clone(), 2), "two workers make the same batches, bit for bit");
    assert!(alone[..4] != alone[4..], "each epoch draws its own crops");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A golden tensor of `tests/golden/images.json` (made by torchvision, `make_golden.py`'s
/// `images()`) as `(shape, values)`.
fn golden(name: &str) -> (Vec<usize>, Vec<f64>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/images.json");
    let g: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let shape = g[name]["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    (shape, g[name]["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect())
}

/// A picture as torchvision holds it: `[3, h, w]` values.
fn planes(img: &RgbImage) -> Vec<f64> {
    (0..3).flat_map(|c| img.pixels().map(move |p| p.0[c] as f64)).collect()
}

#[test]
fn transforms_match_torchvision() {
    let mut rng = Rng::new(0);
    let img = pattern(30, 20, 9);
    let (Picture(f), _) = flip(1.0)((Picture(img.clone()), 0), &mut rng).unwrap();
    assert_eq!(planes(&f), golden("flip").1, "the flip, exactly");
    let (Picture(c), _) = resize_centre_crop(20)((Picture(img.clone()), 0), &mut rng).unwrap();
    assert_eq!(planes(&c), golden("centre_crop_20").1, "the centre crop, exactly");
    // Resize(12) then CenterCrop(12): bilinear with antialiasing in both, within one level of 255.
    let (Picture(r), _) = resize_centre_crop(12)((Picture(img.clone()), 0), &mut rng).unwrap();
    let (shape, theirs) = golden("resize_crop_12");
    assert_eq!(shape, [3, 12, 12]);
    let worst = planes(&r).iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst <= 1.0, "largest difference {worst} levels");
    // A long side that does not divide: 31 x 12 / 20 = 18.6 is 18, truncated as torchvision does.
    let odd = RgbImage::from_fn(31, 20, |x, y| Rgb([x.min(29) as u8, y as u8, 9]));
    let (Picture(r), _) = resize_centre_crop(12)((Picture(odd), 0), &mut rng).unwrap();
    let worst =
        planes(&r).iter().zip(&golden("resize_crop_12_of_31x20").1).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst <= 1.0, "31x20: largest difference {worst} levels");
    // ToDtype(scale=True) then Normalize, to float rounding.
    let collate = PictureCollate { mean: [0.5, 0.25, 0.1], std: [0.2, 0.3, 0.4] };
    let (x, _) = collate.collate(vec![(Picture(img), 0)]).unwrap();
    let ours: Vec<f64> = x.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|&v| v as f64).collect();
    let (_, normalized) = golden("normalized");
    assert!(ours.iter().zip(&normalized).all(|(a, b)| (a - b).abs() <= 1e-6 * b.abs().max(1.0)));
}

#[test]
fn a_picture_that_does_not_decode_fails_by_name_or_another_stands_in_with_its_own_label() {
    let d = tmp("cut");
    folder(&d);
    let whole = std::fs::read(d.join("train/ant/0.png")).unwrap();
    std::fs::write(d.join("train/ant/00-cut.png"), &whole[..whole.len() / 2]).unwrap();
    let (train, _) = ImageFolder::split(&d).unwrap();
    let cut = train.items().iter().position(|(p, _)| p.ends_with("ant/00-cut.png")).unwrap();
    assert!(train.skipped().iter().all(|(p, _)| !p.ends_with("00-cut.png")), "its header reads");
    let err = train.get(cut).unwrap_err().to_string();
    assert!(err.contains("00-cut.png"), "{err}");
    assert!(train.unreadable().list().is_empty(), "a strict folder notes nothing");

    let tolerant = train.clone().stand_in_for_unreadable();
    let (stand_in, label) = tolerant.get(cut).unwrap();
    let (next, next_label) = train.get(cut + 1).unwrap();
    assert_eq!((stand_in, label), (next, next_label), "the next picture, with its own label");
    let noted = tolerant.unreadable().list();
    assert_eq!(noted.len(), 1);
    assert!(noted[0].0.ends_with("00-cut.png"), "{noted:?}");
    // The loader reads on past it, every batch whole.
    let dl = DataLoader::builder_with_collate(tolerant, PictureCollate::default())
        .batch_size(4)
        .item_transform(resize_centre_crop(8))
        .build()
        .unwrap();
    let seen: usize = dl.iter().map(|b| b.unwrap().1.dims1().unwrap()).sum();
    assert_eq!(seen, train.len());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_data_block_pieces_build_what_image_folder_builds() {
    use minibatch::data::block::{
        get_files, CategoryProcessor, DataBlock, GrandparentSplitter, ParentLabeller, RandomSplitter, Split, Splitter,
    };
    let d = tmp("block");
    for (split, n) in [("train", 3), ("valid", 2)] {
        for (c, class) in ["dog", "cat"].iter().enumerate() {
            std::fs::create_dir_all(d.join(split).join(class)).unwrap();
            for i in 0..n {
                pattern(10 + i, 12, c as u8).save(d.join(split).join(class).join(format!("{i}.png"))).unwrap();
            }
        }
    }
    std::fs::write(d.join("README.png"), b"beside the splits: in neither set").unwrap();
    // Lesson 08's three lines.
    let files = get_files(&d, &["png", "jpg", "jpeg"]).unwrap();
    let sets = DataBlock::new(GrandparentSplitter::default(), ParentLabeller).label(files).unwrap();
    let train = ImageFolder::from_items(sets.train, sets.vocab.clone()).unwrap();
    let valid = ImageFolder::from_items(sets.valid, sets.vocab.clone()).unwrap();
    let (want_train, want_valid) = ImageFolder::split(&d).unwrap();
    assert_eq!((train.items(), valid.items()), (want_train.items(), want_valid.items()));
    assert_eq!(sets.vocab, ["cat", "dog"]);

    // The processor is fitted on the training labels: a class only validation has is refused.
    let proc = CategoryProcessor::fit(&["b".into(), "a".into(), "b".into()]);
    assert_eq!((proc.vocab(), proc.process("b").unwrap()), (&["a".to_string(), "b".into()][..], 1));
    assert!(proc.process("c").unwrap_err().to_string().contains("\"a\", \"b\""));
    // Numbers sort as numbers.
    let digits = CategoryProcessor::fit(&["10".into(), "9".into(), "2".into()]);
    assert_eq!(digits.vocab(), ["2", "9", "10"]);
    std::fs::create_dir_all(d.join("valid/emu")).unwrap();
    pattern(4, 4, 0).save(d.join("valid/emu/0.png")).unwrap();
    let files = get_files(&d, &["png"]).unwrap();
    let err = DataBlock::new(GrandparentSplitter::default(), ParentLabeller).label(files).unwrap_err();
    assert!(err.to_string().contains("emu"), "{err}");

    // A random split draws its share from its seed, the same every time.
    let items: Vec<u32> = (0..40).collect();
    let split = |seed| RandomSplitter { valid_pct: 0.25, seed }.split(&items).unwrap();
    assert_eq!(split(1).iter().filter(|s| **s == Some(Split::Valid)).count(), 10);
    assert_eq!(split(1), split(1));
    assert_ne!(split(1), split(2));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn rotations_and_perspective_warps_move_pixels_where_they_should() {
    use minibatch::data::images::{homography, perspective, rotate, rotated};
    let img = pattern(6, 6, 9);
    assert_eq!(rotated(&img, 0.0), img, "no turn, the same picture");
    // A quarter turn of a square maps pixel centres onto pixel centres: exactly the image crate's.
    let turned = image::imageops::rotate270(&img);
    assert_eq!(rotated(&img, std::f64::consts::FRAC_PI_2), turned, "counter-clockwise, as torchvision's");
    // Corners that stay put make the identity.
    let square = [(0.0, 0.0), (6.0, 0.0), (6.0, 6.0), (0.0, 6.0)];
    let m = homography(&square, &square).unwrap();
    for (got, want) in m.iter().zip([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]) {
        assert!((got - want).abs() < 1e-12, "{m:?}");
    }
    // Corners moved inwards: each maps where it was sent.
    let moved = [(1.0, 0.5), (5.5, 1.0), (5.0, 5.0), (0.5, 6.0)];
    let m = homography(&square, &moved).unwrap();
    for (&(x, y), &(u, v)) in square.iter().zip(&moved) {
        let z = m[6] * x + m[7] * y + 1.0;
        assert!(
            ((m[0] * x + m[1] * y + m[2]) / z - u).abs() < 1e-9 && ((m[3] * x + m[4] * y + m[5]) / z - v).abs() < 1e-9
        );
    }
    // Random ones are seeded: the same generator, the same warp; no distortion, no change.
    let (turn, tilt) = (rotate(10.0), perspective(0.3, 1.0));
    let once =
        |seed| tilt(turn((Picture(pattern(16, 12, 3)), 0), &mut Rng::new(seed)).unwrap(), &mut Rng::new(seed)).unwrap();
    assert_eq!(once(4), once(4));
    assert_ne!(once(4), once(5));
    assert_eq!(perspective(0.0, 1.0)((Picture(img.clone()), 2), &mut Rng::new(1)).unwrap(), (Picture(img), 2));
}

#[test]
fn palette_grey_alpha_progressive_and_cmyk_files_decode_as_pillow_decodes_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pictures");
    let text = std::fs::read_to_string(dir.join("decoded.json")).unwrap();
    let want: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (name, pixels) in want["rgb"].as_object().unwrap() {
        let Picture(img) = Picture::open(&dir.join(name)).unwrap();
        assert_eq!((img.width(), img.height()), (16, 12), "{name}");
        let worst = img
            .as_raw()
            .iter()
            .zip(pixels.as_array().unwrap())
            .map(|(&a, b)| (a as i64 - b.as_i64().unwrap()).abs())
            .max()
            .unwrap();
        eprintln!("{name}: worst difference {worst}");
        // PNG is lossless: the same bytes. JPEG decoders round their inverse transforms and
        // colour conversions differently: within a few levels of Pillow's.
        let allowed = if name.ends_with(".png") { 0 } else { 3 };
        assert!(worst <= allowed, "{name}: {worst} levels from Pillow's");
    }
}

#[test]
fn transforms_refuse_what_they_cannot_do_rather_than_panic_or_go_black() {
    use minibatch::data::images::{perspective, rotate};
    let empty = || (Picture(RgbImage::new(0, 0)), 0);
    let some = || (Picture(pattern(8, 6, 1)), 0);
    let rng = &mut Rng::new(0);
    assert!(resize_centre_crop(16)(empty(), rng).unwrap_err().to_string().contains("0x0"));
    assert!(resize_centre_crop(0)(some(), rng).is_err());
    assert!(random_resized_crop(0, CROP_SCALE, CROP_RATIO)(some(), rng).is_err());
    assert!(rotate(f64::NAN)(some(), rng).is_err());
    assert!(perspective(5.0, 1.0)(some(), rng).is_err());
    let flat = PictureCollate { mean: [0.5; 3], std: [0.0, 1.0, 1.0] };
    assert!(flat.collate(vec![some()]).unwrap_err().to_string().contains("standard deviations above 0"));
}
