set -x
A="/tmp/mpiw/t10k.tscn -q --backbone resnet_tiny --image-size 16 --epochs 4,1,2 --batch 256 --train-subset 4000 --seed 1 --flip-p 0 --workers 1"
time /tmp/mpibin/train $A -o one --threads 2
time mpirun --oversubscribe --allow-run-as-root -np 2 /tmp/mpibin/train $A -o two --threads 1
/tmp/mpibin/embed one/checkpoint.safetensors /tmp/mpiw/t10k.tscn -o one.arrow -q
/tmp/mpibin/embed two/checkpoint.safetensors /tmp/mpiw/t10k.tscn -o two.arrow -q
cat one/metrics.csv two/metrics.csv
