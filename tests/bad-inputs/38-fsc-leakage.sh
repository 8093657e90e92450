# a clip in both the train and the test CSV
# exit: 2
# stderr: test_data.csv:2: audio file
d=c/fluent_speech_commands_dataset
mkdir -p $d/wavs $d/data
for i in 1 2 3 4; do mk wav $d/wavs/$i.wav --n 4000; done
for s in train valid test; do echo 'path,speakerId,transcription,action,object,location' >$d/data/${s}_data.csv; done
echo 'wavs/1.wav,s,t,a,b,c' >>$d/data/train_data.csv
echo 'wavs/2.wav,s,t,x,b,c' >>$d/data/train_data.csv
echo 'wavs/3.wav,s,t,a,b,c' >>$d/data/valid_data.csv
echo 'wavs/1.wav,s,t,a,b,c' >>$d/data/test_data.csv
petal train --data fsc "$W/c" --epochs 1 --threads 1 --set features.frames=16 --set features.mel_bins=32
